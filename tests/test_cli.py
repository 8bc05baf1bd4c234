"""The command line (``taylorsketch/cli.py``): every subcommand on a tiny
configuration of the paper's set-up (30 documents, 30 steps, order 2, 8
directions), text and ``--json`` output, ``--help``, and user errors (exit
status 2, one line on stderr).  ``reproduce`` is tested with its module."""

import json
import shutil
import subprocess

import numpy as np
import pytest

import taylorsketch as ts
from taylorsketch.cli import main

DATA = ["--n-docs", "30", "--steps", "30"]
SKETCH = DATA + ["--order", "2", "--directions", "8"]
X_DOCS = [2, 8]    # the first 30 shuffled names containing 'x' (method.md section 4)


def run(capsys, *argv):
    """``main(argv)`` -> (exit status, stdout, stderr)."""
    status = main(["--no-progress", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def run_json(capsys, *argv):
    status, out, err = run(capsys, "--json", *argv)
    assert status == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def sketch_path(folder):
    path = folder / "sketch.npz"
    assert main(["--no-progress", "precompute", *SKETCH, "--out", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def exact_path(folder):
    """One exact direction: the indicator of the documents containing 'x'."""
    path = folder / "exact.npz"
    assert main(["--no-progress", "precompute", *DATA, "--order", "2", "--exact-contains", "x",
                 "--out", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def paper():
    s = ts.paper.setup(seed=42)
    return ts.MicroGPT(s.vocab), s.init, s.docs[:30]


def test_precompute(capsys, folder, sketch_path, exact_path):
    sketch = ts.Sketch.load(sketch_path)
    assert (sketch.order, sketch.n_directions, sketch.n_docs, sketch.kind) == (2, 8, 30, "random")
    assert sketch.meta["data"] == {"source": "paper", "seed": 42, "n_docs": 30}
    assert sketch.meta["training"]["steps"] == 30

    exact = ts.Sketch.load(exact_path)
    assert exact.kind == "explicit" and np.flatnonzero(exact.directions[0]).tolist() == X_DOCS

    path = folder / "small.npz"
    report = run_json(capsys, "precompute", *DATA, "--order", "1", "--directions", "2", "--out", str(path))
    assert report == {"out": str(path), "order": 1, "n_directions": 2, "n_docs": 30, "kind": "random"}
    before = path.read_bytes()
    status, _, err = run(capsys, "precompute", *DATA, "--order", "1", "--directions", "3", "--out", str(path))
    assert status == 2 and err == f"taylorsketch precompute: error: {path} exists; pass --force to overwrite it\n"
    assert path.read_bytes() == before
    status, out, _ = run(capsys, "precompute", *DATA, "--order", "1", "--directions", "3", "--out", str(path),
                         "--force")
    assert status == 0 and out.startswith("wrote Sketch(order=1, n_directions=3")


def test_predict_text_and_json(capsys, paper, sketch_path):
    status, out, _ = run(capsys, "predict", str(sketch_path), "--delete-contains", "x")
    assert status == 0
    assert "2 documents deleted" in out and "order 2 term" in out and "(8 directions)" in out

    report = run_json(capsys, "predict", str(sketch_path), "--delete-contains", "x")
    model = paper[0]
    p = ts.Sketch.load(sketch_path).predict(ts.measure.doc_loss(model, "max"), X_DOCS)
    assert report["measure"] == "loss('max')" and report["deleted"] == 2
    assert report["value"] == p.value and report["stderr"] == p.stderr
    assert report["terms"] == p.terms.tolist() and report["degree"] == 2

    same = run_json(capsys, "predict", str(sketch_path), "--delete-indices", "2,8")
    assert same["value"] == report["value"]

    several = run_json(capsys, "predict", str(sketch_path), "--delete-indices", "2,8", "--t", "0.5", "1",
                       "--degree", "1", "--groups", "2")
    assert len(several["value"]) == 2 and several["degree"] == 1 and several["groups"] == 2

    logp = run_json(capsys, "predict", str(sketch_path), "--continuation", "ax$", "--prefix", "m",
                    "--delete-indices", "2")
    assert logp["measure"] == "logP('ax$'|'m')" and logp["base"] < 0


def test_predict_exact_direction(capsys, exact_path):
    status, out, _ = run(capsys, "predict", str(exact_path), "--delete-contains", "x")
    assert status == 0 and "(exact direction)" in out
    report = run_json(capsys, "predict", str(exact_path), "--delete-contains", "x")
    assert report["exact"] is True and report["stderr"] == 0.0


def test_retrain(capsys, paper):
    model, init, docs = paper
    report = run_json(capsys, "retrain", *DATA, "--delete-indices", "2,8", "--t", "0", "1")
    phi = ts.measure.doc_loss(model, "max")
    truth = [phi(ts.retrain(model, init, docs, X_DOCS, t=t, steps=30, progress=False)) for t in (0.0, 1.0)]
    assert report["deleted"] == 2
    assert [r["t"] for r in report["results"]] == [0.0, 1.0]
    assert [r["value"] for r in report["results"]] == truth

    status, out, _ = run(capsys, "retrain", *DATA, "--delete-contains", "x")
    assert status == 0 and "t = 1.000" in out and f"{truth[1]:.10f}" in out


def test_stability(capsys, sketch_path):
    status, out, _ = run(capsys, "stability", str(sketch_path))
    assert status == 0 and "r =   1" in out and "r =   2" in out
    report = run_json(capsys, "stability", str(sketch_path), "--doc", "yuheng")
    assert report["measure"] == "loss('yuheng')" and report["orders"] == [1, 2]
    assert len(report["combined"]) == 2 and np.array(report["per_direction"]).shape == (8, 2)


def test_validate(capsys, sketch_path):
    report = run_json(capsys, "validate", str(sketch_path), "--sizes", "1,2", "--sets", "2")
    assert report["sizes"] == [1, 2] and len(report["truth"]) == 4
    assert np.array(report["truncations"]).shape == (4, 3)
    assert -1 <= report["rank_correlation"] <= 1
    status, out, _ = run(capsys, "validate", str(sketch_path), "--sizes", "1", "--sets", "1")
    assert status == 0 and "rank correlation" in out


def test_shards_and_merge(capsys, folder, sketch_path):
    shards = [folder / f"shard{i}.npz" for i in range(2)]
    for i, path in enumerate(shards):
        status, _, err = run(capsys, "precompute", *SKETCH, "--shard", str(i), "--num-shards", "2",
                             "--out", str(path))
        assert status == 0, err
    merged_path = folder / "merged.npz"
    report = run_json(capsys, "merge", str(merged_path), *map(str, shards))
    assert report == {"out": str(merged_path), "n_directions": 8}
    merged, whole = ts.Sketch.load(merged_path), ts.Sketch.load(sketch_path)
    assert np.array_equal(merged.directions, whole.directions)
    assert np.allclose(merged.series, whole.series, rtol=1e-12, atol=1e-12 * np.abs(whole.series).max())

    status, _, err = run(capsys, "merge", str(folder / "twice.npz"), str(shards[0]), str(shards[0]))
    assert status == 2 and "repeat" in err


@pytest.mark.parametrize("command", [[], ["precompute"], ["predict"], ["retrain"], ["stability"],
                                     ["validate"], ["merge"]])
def test_help(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    assert "usage: taylorsketch" in capsys.readouterr().out


def test_user_errors_exit_2_with_one_line(capsys, folder, sketch_path):
    corrupt = folder / "corrupt.npz"
    corrupt.write_bytes(b"this is not a sketch" * 50)
    missing = folder / "missing.npz"
    sketch = str(sketch_path)
    cases = [
        (["predict", str(missing), "--delete-indices", "0"], "no sketch at"),
        (["stability", str(missing)], "no sketch at"),
        (["predict", str(corrupt), "--delete-indices", "0"], "corrupt.npz"),
        (["validate", str(corrupt)], "corrupt.npz"),
        (["merge", str(folder / "m.npz"), str(corrupt), sketch], "corrupt.npz"),
        (["merge", sketch, str(corrupt), sketch], "is one of the inputs"),
        (["merge", sketch, str(corrupt)], "at least two shards"),   # the output name forgotten
        (["merge", str(folder / "m.npz"), sketch], "at least two shards"),
        (["merge", str(folder), sketch, sketch], "is a folder"),
        (["merge", "", sketch, sketch], "output path is empty"),
        (["merge", str(folder / "m.npz"), str(folder), sketch], "is a folder"),
        (["precompute", *SKETCH, "--out", str(folder)], "is a folder"),
        (["precompute", *SKETCH, "--out", ""], "output path is empty"),
        (["precompute", *SKETCH, "--out", sketch], "pass --force"),
        (["retrain", "--n-docs", "40000", "--delete-indices", "0"], "has only 32033"),
        (["predict", sketch, "--delete-indices", "1,a"], "comma-separated integers"),
        (["predict", sketch, "--delete-indices", "0,30"], "out of range"),
        (["predict", sketch, "--delete-indices", "-1"], "out of range"),
        (["predict", sketch, "--delete-indices", "1,1"], "twice"),
        (["retrain", *DATA, "--delete-indices", "99"], "out of range"),
        (["predict", sketch], "say what to delete"),
        (["predict", sketch, "--delete-contains", "zzz"], "nothing to delete"),
        (["predict", sketch, "--delete-indices", ","], "lists no document"),
        (["retrain", *DATA, "--delete-indices", "1,1"], "twice"),
        (["precompute", *DATA, "--exact-contains", "zzz", "--out", str(folder / "o.npz")], "would be zero"),
        (["retrain", *DATA], "say what to delete"),
        (["predict", sketch, "--doc", "Max!", "--delete-indices", "0"], "vocabulary"),
        (["predict", sketch, "--delete-indices", "0", "--degree", "3"], "degree"),
        (["predict", sketch, "--delete-indices", "0", "--groups", "9"], "groups"),
        (["precompute", *SKETCH, "--shard", "2", "--num-shards", "2", "--out", str(folder / "o.npz")], "shard"),
        (["precompute", "--docs", str(folder / "no-such-docs.txt"), "--out", str(folder / "o.npz")],
         "cannot read documents"),
        (["merge", str(folder / "no" / "such" / "m.npz"), sketch, sketch], "cannot write"),
    ]
    for argv, message in cases:
        assert_user_error(capsys, argv, message)
    assert not missing.exists() and not (folder / "o.npz").exists()


def test_unwritable_out_fails_before_computing(capsys, folder, monkeypatch):
    def no_computation(*args, **kwargs):
        raise AssertionError("computed a sketch before checking --out")

    monkeypatch.setattr("taylorsketch.commands.precompute", no_computation)
    assert_user_error(capsys, ["precompute", *SKETCH, "--out", str(folder / "no" / "such" / "s.npz")],
                      "cannot write")


def assert_user_error(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2, (argv, err)
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"taylorsketch {argv[0]}: error: "), err
    assert message in err, (argv, err)


def test_argument_errors_exit_2(capsys):
    for argv in (["predict"], ["precompute", "--order", "two"], ["frobnicate"],
                 ["precompute", "--order", "0"], ["retrain", "--steps", "-1"], ["retrain", "--n-docs", "-32000"],
                 ["retrain", "--n-docs", "0"], ["predict", "s.npz", "--t", "nan"], ["predict", "s.npz", "--t", "inf"],
                 ["predict", "s.npz", "--groups", "0"], ["validate", "s.npz", "--sets", "0"],
                 ["predict", "s.npz", "--delete-contains", ""], ["predict", "s.npz", "--doc", ""],
                 ["precompute", "--batch-size", "-1"], ["precompute", "--workers", "0"],
                 ["precompute", "--docs", ""], ["reproduce", "fig2", "--workers", "0"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.splitlines()[-1].startswith("taylorsketch"), (argv, err)


def test_console_script():
    exe = shutil.which("taylorsketch")
    assert exe is not None, "the console script is not installed (pip install -e .)"
    done = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    for command in ("precompute", "predict", "retrain", "stability", "validate", "merge"):
        assert command in done.stdout


def test_predict_at_degree_zero_is_the_unperturbed_value(capsys, sketch_path):
    status, out, _ = run(capsys, "--json", "predict", str(sketch_path), "--delete-indices", "0",
                         "--degree", "0")
    report = json.loads(out)
    assert status == 0 and report["value"] == report["base"] and report["terms"] == []


def test_deletion_options_are_exclusive(capsys, sketch_path):
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(sketch_path), "--delete-contains", "x", "--delete-indices", "1"])
    assert exit_.value.code == 2 and "not allowed with" in capsys.readouterr().err
