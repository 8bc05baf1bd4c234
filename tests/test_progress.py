"""Progress (``taylorsketch/progress.py``) and the long calls that report to it.

(a) the mechanism: counters, bars, their summary line, the shared counter of
workers; (b) every long call reaches its total in the unit it documents
(direction-steps for jet training and precompute, with and without workers;
steps for plain and MultiJet training and validation; directions for coefficients);
(c) when it is silent: ``progress=False``, ``--quiet``, stderr not a
terminal; (d) a notebook without ipywidgets (tqdm.auto falls back to its
one-line bar); (e) the summary line, printed once.
"""

import io
import multiprocessing
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import taylorsketch as ts
from taylorsketch import progress
from taylorsketch.cli import main
from taylorsketch.progress import Bar, Counter, SharedCounter, task

STEPS = 12


class Terminal(io.StringIO):
    """A stand-in for stderr on a terminal."""

    def isatty(self):
        return True


def on_terminal(monkeypatch):
    """From now on stderr is a terminal (and no Jupyter kernel is loaded): what is printed there.
    (Called in the test itself: pytest's capture resets sys.stderr after a fixture's setup.)"""
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    fake = Terminal()
    monkeypatch.setattr(sys, "stderr", fake)
    return fake


@pytest.fixture(scope="module")
def tiny():
    """(model, init, docs, phi): a MicroGPT on 15 short names over the letters a..h."""
    docs = [d for d in ts.load_names() if set(d) <= set("abcdefgh") and len(d) <= 7][:15]
    model = ts.MicroGPT(ts.Vocab("abcdefgh"), n_embd=8, n_head=2, block_size=8)
    return model, model.init_params(seed=0), docs, ts.measure.doc_loss(model, "bad")


def summary_lines(text):
    """The lines of ``text`` (bars drawn with carriage returns removed) that are summaries."""
    lines = [piece.split("\r")[-1] for piece in text.split("\n")]
    return [line for line in lines if " in " in line and (line.endswith(" s") or "; wrote " in line)]


# ----------------------------------------------------------------------------
# (a) the mechanism


def test_counter_and_a_hidden_bar_count():
    counter = Counter()
    counter.add(3)
    counter.add()
    assert counter.n == 4
    bar = Bar(False, total=10, label="work", unit="step")
    bar.add(4)
    bar.add(6)
    assert (bar.n, bar.total, bar.label) == (10, 10, "work")
    assert bar.summary_line().startswith("work: 10 steps in ")


def test_task_reports_into_an_enclosing_counter_and_sizes_an_unsized_bar():
    outer = Bar(False)
    with task(outer, 20, "jet training", "direction-step") as counter:
        assert counter is outer
        counter.add(20)
    assert (outer.total, outer.label, outer.unit, outer.n) == (20, "jet training", "direction-step", 20)
    with task(outer, 99, "something else") as counter:    # a sized bar keeps its size and label
        counter.add(1)
    assert (outer.total, outer.label, outer.n) == (20, "jet training", 21)
    plain = Counter()
    with task(plain, 5, "x") as counter:
        assert counter is plain


def test_shown():
    assert progress.shown(True) and not progress.shown(False)


def test_format_duration():
    assert progress.format_duration(0.84) == "0.8 s"
    assert progress.format_duration(252) == "4 min 12 s"
    assert progress.format_duration(3900) == "1 h 05 min"


def test_shared_counter_publishes_every_interval_and_at_flush():
    value = multiprocessing.get_context("spawn").Value("q", 0)
    lazy = SharedCounter(value, interval=3600.0)
    for _ in range(5):
        lazy.add(7)
    assert value.value == 0                      # not yet published: no lock per step
    lazy.flush()
    assert value.value == 35
    eager = SharedCounter(value, interval=0.0)
    eager.add(5)
    assert value.value == 40


# ----------------------------------------------------------------------------
# (b) every long call reaches its total, in its unit


def test_jet_training_counts_steps_times_directions(tiny):
    model, init, docs, _ = tiny
    psi = ts.estimator.random_directions(len(docs), np.arange(3), seed=0)
    weights = ts.Jet.from_directions(np.zeros(len(docs)), psi, 2)
    bar = Bar(False)
    ts.train(model, init, docs, steps=STEPS, weights=weights, progress=bar)
    assert (bar.n, bar.total, bar.unit) == (STEPS * 3, STEPS * 3, "direction-step")
    assert bar.label == "jet training, order 2, 3 directions"


def test_plain_training_counts_steps(tiny):
    model, init, docs, _ = tiny
    bar = Bar(False)
    ts.train(model, init, docs, steps=STEPS, progress=bar)
    assert (bar.n, bar.total, bar.unit, bar.label) == (STEPS, STEPS, "step", f"training, {STEPS} steps")


def test_multijet_training_counts_steps(tiny):
    model, init, docs, phi = tiny
    bar = Bar(False)
    ts.interactions(model, init, docs, [1, 2, 3], phi, steps=STEPS, progress=bar)
    assert (bar.n, bar.total, bar.unit, bar.label) == (STEPS, STEPS, "step", "MultiJet training, 3 variables")


@pytest.mark.parametrize("workers", [1, 2])
def test_precompute_reaches_steps_times_directions(tiny, workers):
    """One bar for the whole run, summed over the batches and over the worker processes."""
    model, init, docs, _ = tiny
    bar = Bar(False)
    sketch = ts.precompute(model, init, docs, order=2, directions=6, steps=STEPS, batch_size=3,
                           workers=workers, progress=bar)
    assert sketch.n_directions == 6
    assert (bar.n, bar.total, bar.unit) == (STEPS * 6, STEPS * 6, "direction-step")
    assert bar.label == "jet training, order 2, 6 directions"


@pytest.mark.parametrize("workers", [1, 2])
def test_per_document_precompute_counts_the_steps_each_batch_trains(tiny, workers):
    """Batches of documents start at their first document's step: batch [a, b) trains
    ``(steps - a) x (b - a)`` direction-steps."""
    model, init, docs, _ = tiny
    bar = Bar(False)
    ts.precompute(model, init, docs, order=1, directions="documents", steps=STEPS, batch_size=5,
                  workers=workers, progress=bar)
    expected = (STEPS - 0) * 5 + (STEPS - 5) * 5 + (STEPS - 10) * 2      # documents 0..11 are trained on
    assert (bar.n, bar.total, bar.unit) == (expected, expected, "direction-step")
    assert bar.label == "per-document jet training, order 1, 12 documents"


def test_precompute_labels_exact_directions_and_shards(tiny):
    model, init, docs, _ = tiny
    bar = Bar(False)
    ts.precompute(model, init, docs, order=2, directions=np.ones((1, len(docs))), steps=STEPS, progress=bar)
    assert bar.label == "jet training, order 2, 1 exact direction" and bar.n == STEPS
    bar = Bar(False)
    ts.precompute(model, init, docs, order=2, directions=6, steps=STEPS, shard=1, num_shards=2, progress=bar)
    assert bar.label == "jet training, order 2, 3 directions, shard 2 of 2" and bar.n == STEPS * 3


def test_coefficients_count_directions_batch_by_batch(tiny):
    model, init, docs, phi = tiny
    sketch = ts.precompute(model, init, docs, order=2, directions=5, steps=STEPS, progress=False)
    seen = []

    class Recorder(Counter):
        def add(self, k=1):
            super().add(k)
            seen.append(k)
    counter = Recorder()
    sketch.coefficients(phi, batch_size=2, progress=counter)
    assert seen == [2, 2, 1] and counter.n == 5


def test_validate_counts_the_steps_of_every_retraining(tiny):
    model, init, docs, phi = tiny
    sketch = ts.precompute(model, init, docs, order=2, directions=4, steps=STEPS, progress=False)
    bar = Bar(False)
    ts.validate(sketch, model, init, docs, phi, sizes=(1, 2), sets_per_size=2, progress=bar)
    assert (bar.n, bar.total, bar.unit) == (4 * STEPS, 4 * STEPS, "step")
    assert bar.label == f"validation, 4 retrainings of {STEPS} steps"


# ----------------------------------------------------------------------------
# (c) when it is silent


def test_silent_when_asked_even_on_a_terminal(tiny, monkeypatch):
    terminal = on_terminal(monkeypatch)
    model, init, docs, phi = tiny
    sketch = ts.precompute(model, init, docs, order=2, directions=4, steps=STEPS, progress=False)
    ts.train(model, init, docs, steps=STEPS, progress=False)
    ts.validate(sketch, model, init, docs, phi, sizes=(1,), sets_per_size=1, progress=False)
    assert terminal.getvalue() == ""


def test_silent_by_default_when_stderr_is_not_a_terminal(tiny, capsys, monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    model, init, docs, _ = tiny
    assert not progress.shown(None)
    ts.precompute(model, init, docs, order=2, directions=4, steps=STEPS)
    ts.train(model, init, docs, steps=STEPS)
    assert capsys.readouterr().err == ""


def test_a_bar_by_default_on_a_terminal(tiny, monkeypatch):
    terminal = on_terminal(monkeypatch)
    model, init, docs, _ = tiny
    assert progress.shown(None)
    ts.train(model, init, docs, steps=STEPS)
    shown = terminal.getvalue()
    assert f"training, {STEPS} steps:" in shown and "\r" in shown      # one line, redrawn
    assert summary_lines(shown) == [summary_lines(shown)[0]]


def test_cli_quiet_is_silent_on_a_terminal(tmp_path, monkeypatch):
    terminal = on_terminal(monkeypatch)
    args = ["precompute", "--n-docs", "10", "--steps", "5", "--order", "1", "--directions", "2", "--force"]
    for quiet in ("--quiet", "-q", "--no-progress"):
        assert main([quiet, *args, "--out", str(tmp_path / "s.npz")]) == 0
        assert terminal.getvalue() == ""
    assert main([*args, "--out", str(tmp_path / "s.npz")]) == 0
    assert "jet training, order 1, 2 directions" in terminal.getvalue()
    assert len(summary_lines(terminal.getvalue())) == 1


# ----------------------------------------------------------------------------
# (d) a notebook without ipywidgets


NOTEBOOK = textwrap.dedent("""
    import sys, types

    # a Jupyter kernel as tqdm.auto detects one: IPython with ipykernel's ZMQ shell, and no
    # ipywidgets; all faked, so that the test needs none of them installed
    IPython = types.ModuleType("IPython")
    sys.modules["IPython"] = IPython
    sys.modules["ipykernel"] = types.ModuleType("ipykernel")
    sys.modules["ipykernel.zmqshell"] = types.ModuleType("ipykernel.zmqshell")
    sys.modules["ipywidgets"] = None
    ZMQInteractiveShell = type("ZMQInteractiveShell", (), {})
    IPython.get_ipython = lambda: ZMQInteractiveShell()

    import taylorsketch as ts
    assert not sys.stderr.isatty() and ts.progress.shown(None)
    s = ts.paper.setup(seed=42)
    model = s.model()
    params = ts.train(model, s.init, s.docs[:10], steps=10)           # progress=None: a bar
    import tqdm.autonotebook, tqdm.std
    assert "tqdm.notebook" in sys.modules                              # the notebook path was tried
    assert tqdm.autonotebook.tqdm is tqdm.std.tqdm                     # and fell back
    print(sorted(params) == sorted(s.init))
""")


def test_a_notebook_without_ipywidgets_gets_the_one_line_bar():
    done = subprocess.run([sys.executable, "-c", NOTEBOOK], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    assert "training, 10 steps:" in done.stderr
    assert "IProgress" not in done.stderr and "Warning" not in done.stderr
    assert len(summary_lines(done.stderr)) == 1


# ----------------------------------------------------------------------------
# (e) the summary line, once


def test_bar_prints_its_summary_once_and_not_after_a_failure(capsys):
    with Bar(True, total=3, label="work") as bar:
        bar.add(3)
        bar.close(written="out.npz")
    err = capsys.readouterr().err
    assert summary_lines(err) == [f"work: 3 steps in {progress.format_duration(bar.seconds)}; wrote out.npz"]
    with pytest.raises(RuntimeError):
        with Bar(True, total=3, label="work") as bar:
            bar.add(1)
            raise RuntimeError("stop")
    assert summary_lines(capsys.readouterr().err) == []


def test_cli_precompute_prints_one_summary_line_with_the_file(tmp_path, capsys):
    out = tmp_path / "s.npz"
    assert main(["--progress", "precompute", "--n-docs", "10", "--steps", "5", "--order", "1",
                 "--directions", "2", "--workers", "1", "--out", str(out)]) == 0
    stdout, err = capsys.readouterr()
    assert stdout.startswith("wrote Sketch(order=1, n_directions=2")        # standard output unchanged
    lines = summary_lines(err)
    assert len(lines) == 1, err
    assert lines[0].startswith("jet training, order 1, 2 directions: 10 direction-steps in ")
    assert lines[0].endswith(f"; wrote {out}")


def test_cli_retrain_and_validate_print_one_summary_line_each(tmp_path, capsys):
    data = ["--n-docs", "10", "--steps", "5"]
    assert main(["--progress", "retrain", *data, "--delete-indices", "1", "--t", "0", "1"]) == 0
    lines = summary_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("retraining, 2 weights t, 5 steps each: 10 steps in ")
    path = str(tmp_path / "s.npz")
    assert main(["--quiet", "precompute", *data, "--order", "1", "--directions", "2", "--out", path]) == 0
    capsys.readouterr()
    assert main(["--progress", "validate", path, "--sizes", "1", "--sets", "2"]) == 0
    lines = summary_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("validation, 2 retrainings of 5 steps: 10 steps in ")
