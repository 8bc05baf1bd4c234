"""Bad input on purpose, found by hypothesis rather than by users (issue 13, docs/errors.md).

Three promises, each fuzzed (derandomised in CI by the ``ci`` profile):

* a damaged sketch file (bytes overwritten, truncated, metadata keys deleted
  or replaced, arrays of another dtype or shape or with NaN) is a
  ``SketchFileError`` from ``Sketch.load`` and nothing else; if the damage
  missed everything that is read, the sketch loads unchanged;
* any argument vector of any command (``reproduce`` only with something
  wrong: a valid run takes minutes) exits 0 or 2 with no traceback
  (``taylorsketch.cli.main`` run in-process);
* the public jet functions given random shapes, dtypes, orders and
  non-finite values return a result or raise ``ValueError``/``TypeError``.

Plus the cases of the issue that are not random: a closed standard output,
an internal error, the measurement cache across models.  The whole file
takes about 20 s; ``FUZZ_EXAMPLES=2000`` makes a longer hunt (2000 examples
per fuzz test instead of 150-250).
"""

import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import strategies
import taylorsketch as ts
from taylorsketch import cli, commands
from taylorsketch.sketch import Sketch
from taylorsketch.sketch_file import SketchFileError

ARRAYS = ("primal", "series", "directions", "direction_ids")
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 150)), suppress_health_check=[HealthCheck.too_slow,
                                                         HealthCheck.function_scoped_fixture])


# ----------------------------------------------------------------------------
# damaged sketch files


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small sketch (MLP, 4 documents, order 2, 2 directions), its file's bytes and its arrays."""
    model = ts.MLP(n_in=2, n_hidden=2, n_out=1)
    docs = ts.MLP.synthetic_dataset(4, seed=0)
    sketch = ts.precompute(model, model.init_params(seed=0), docs, order=2, directions=2, steps=4,
                           progress=False)
    path = tmp_path_factory.mktemp("fuzz") / "small.npz"
    sketch.save(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    return path.read_bytes(), arrays, docs


def _load_bytes(data, folder, name="damaged.npz"):
    path = folder / name
    path.write_bytes(data)
    return Sketch.load(path)


def _with(arrays, **changes):
    buffer = io.BytesIO()
    np.savez(buffer, **{**arrays, **changes})
    return buffer.getvalue()


def _meta(arrays):
    return json.loads(arrays["meta"].tobytes().decode("utf-8"))


def _meta_array(meta):
    return np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)


def _still_usable(sketch, docs):
    """A sketch that loaded must answer (or refuse with a ValueError), not crash."""
    try:
        sketch.predict(ts.measure.doc_loss(sketch.model, docs[0]), [0])
    except (ValueError, TypeError):
        pass


def test_the_undamaged_file_loads(saved, tmp_path):
    data, arrays, _ = saved
    sketch = _load_bytes(data, tmp_path)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(sketch, name), arrays[name])


@FUZZ
@given(st.data())
def test_damaged_bytes_are_a_sketch_file_error(saved, tmp_path, data):
    original, arrays, _ = saved
    damaged = data.draw(strategies.byte_damage(original))
    try:
        sketch = _load_bytes(damaged, tmp_path)
    except SketchFileError:
        return
    # the damage hit only bytes that are not read (a zip timestamp, ...): nothing changed
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(sketch, name), arrays[name])
    assert sketch.meta == _meta(arrays)


@FUZZ
@given(st.data())
def test_edited_metadata_is_a_sketch_file_error_or_a_usable_sketch(saved, tmp_path, data):
    _, arrays, docs = saved
    meta = data.draw(strategies.metadata_edits(_meta(arrays)))
    try:
        sketch = _load_bytes(_with(arrays, meta=_meta_array(meta)), tmp_path)
    except SketchFileError:
        return
    _still_usable(sketch, docs)


@FUZZ
@given(st.data())
def test_edited_arrays_are_a_sketch_file_error(saved, tmp_path, data):
    _, arrays, _ = saved
    name = data.draw(st.sampled_from(ARRAYS + ("meta",)))
    edited = data.draw(strategies.array_edits(arrays[name]))
    if edited.dtype == arrays[name].dtype and edited.shape == arrays[name].shape \
            and np.array_equal(edited, arrays[name]):
        return    # the edit changed nothing (complex128 to complex128)
    with pytest.raises(SketchFileError):
        _load_bytes(_with(arrays, **{name: edited}), tmp_path)


def test_metadata_that_names_an_impossible_model(saved, tmp_path):
    """The issue's cases: n_head 0, a missing kind or fingerprint, a malformed data source."""
    _, arrays, _ = saved
    meta = _meta(arrays)
    gpt = {"model": "MicroGPT", "chars": "ab", "vocab_size": 3, "n_layer": 1, "n_embd": 4, "n_head": 0,
           "block_size": 4, "init_std": 0.08}
    edits = [{"model": gpt}, {"kind": None}, {"fingerprint": None}, {"data": {"source": "paper"}},
             {"data": "names.txt"}, {"n_docs": 5}, {"order": 3}, {"total_directions": 1}]
    for edit in edits:
        edited = {k: v for k, v in {**meta, **edit}.items() if v is not None}
        with pytest.raises(SketchFileError):
            _load_bytes(_with(arrays, meta=_meta_array(edited)), tmp_path)
    with pytest.raises(SketchFileError, match="folder"):
        Sketch.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        Sketch.load(tmp_path / "missing.npz")


# ----------------------------------------------------------------------------
# the command line


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    """Real and bad paths for argument vectors: a documents file, a sketch of it and
    a copy, a folder, a missing file, a file that is not a sketch."""
    folder = tmp_path_factory.mktemp("cli-fuzz")
    docs = folder / "names.txt"
    docs.write_text("anna\nbob\ncarl\ndora\nemil\nfrida\nmax\nxena\n")
    sketch = folder / "s.npz"
    status = cli.main(["--no-progress", "precompute", "--docs", str(docs), "--order", "2",
                       "--directions", "4", "--out", str(sketch)])
    assert status == 0
    half = folder / "half.npz"
    assert cli.main(["--no-progress", "precompute", "--docs", str(docs), "--order", "2", "--directions", "4",
                     "--shard", "1", "--num-shards", "2", "--out", str(half)]) == 0
    per = folder / "per.npz"
    assert cli.main(["--no-progress", "precompute", "--docs", str(docs), "--order", "2", "--documents",
                     "--out", str(per)]) == 0
    (folder / "copy.npz").write_bytes(sketch.read_bytes())
    home = os.getcwd()
    os.chdir(folder)    # a default output (sketch.npz, results/) lands here, not in the repository
    yield {"docs": str(docs), "sketch": str(sketch), "half": str(half), "per": str(per), "copy": str(folder / "copy.npz"),
            "folder": str(folder), "missing": str(folder / "missing.npz"), "empty": "",
            "new": str(folder / "new.npz"), "nested": str(folder / "no" / "such.npz")}
    os.chdir(home)


def _argv(draw, paths):
    """One random argument vector: a command, its positionals and a few options."""
    path = st.sampled_from(sorted(paths)).map(paths.get)
    sketch = st.sampled_from(["sketch", "sketch", "half", "per", "docs", "folder", "missing", "empty"]).map(paths.get)
    # outputs: never the inputs the other examples read (``--force`` would replace them)
    out = st.sampled_from(["copy", "new", "folder", "missing", "empty", "nested"]).map(paths.get)
    command = draw(st.sampled_from(["precompute", "predict", "retrain", "stability", "validate", "merge",
                                    "reproduce", "interactions", "leave-one-out", "plan"]))
    method = st.sampled_from(["sketch", "residual", "additive", "sum", "exact", "bogus", ""])
    # options whose large values cost time get small or invalid values only
    cheap = strategies.small_numbers | strategies.bad_numbers
    measure = {"--doc": strategies.texts, "--continuation": strategies.texts, "--prefix": strategies.texts}
    delete = {"--delete-contains": strategies.texts, "--delete-indices": strategies.texts | cheap}
    data = {"--n-docs": cheap, "--data-seed": strategies.any_numbers, "--steps": cheap}
    options, argv = {}, [command]
    if command == "precompute":
        argv += ["--docs", draw(path), "--directions", draw(cheap), "--out", draw(out)]
        options = {**data, "--order": cheap, "--exact-contains": strategies.texts, "--seed": strategies.any_numbers,
                   "--batch-size": strategies.any_numbers, "--shard": strategies.any_numbers,
                   "--num-shards": cheap, "--workers": strategies.bad_numbers, "--documents": st.none()}
    elif command == "predict":
        argv += [draw(sketch), "--doc", "anna", "--delete-indices", "1"]
        options = {**measure, **delete, "--t": strategies.any_numbers, "--degree": strategies.any_numbers,
                   "--groups": strategies.any_numbers, "--documents": sketch, "--method": method}
    elif command == "retrain":
        argv += ["--docs", draw(path), "--doc", "anna", "--delete-contains", "x"]
        options = {**data, **measure, **delete, "--t": strategies.any_numbers}
    elif command == "stability":
        argv.append(draw(sketch))
        options = measure
    elif command == "validate":
        argv += [draw(sketch), "--doc", "anna", "--sizes", "1,2", "--sets", "1"]
        options = {**measure, "--sizes": strategies.texts | cheap, "--sets": cheap,
                   "--seed": strategies.any_numbers, "--groups": strategies.any_numbers}
    elif command == "merge":
        argv += [draw(out)] + draw(st.lists(sketch, min_size=0, max_size=3))
        options = {"--complete": st.none(), "--force": st.none()}
    elif command == "interactions":   # small groups only: a group of d members costs 2^d
        argv += ["--docs", draw(path), "--doc", "anna", "--group",
                 draw(st.sampled_from(["0", "0,1", "0+1,2", "", "x", "99", "-1", "0,0", "1,,2", "0+0"]))]
        options = {**data, **measure, "--top": strategies.any_numbers}
    elif command == "leave-one-out":
        argv += [draw(sketch), "--doc", "anna"]
        options = {**measure, "--top": strategies.any_numbers}
    elif command == "plan":
        argv += [draw(sketch), "--doc", "anna", "--delete-indices", "1,2", "--target", draw(strategies.any_numbers)]
        options = {**measure, **delete, "--degree": strategies.any_numbers, "--groups": strategies.any_numbers,
                   "--documents": sketch, "--method": method}
    else:   # reproduce: always something wrong, a valid run takes minutes
        argv.append(draw(st.sampled_from(["fig9", "", "fig2"])))
        argv += ["--out", paths["docs"]] if argv[1] == "fig2" else []
        options = {"--preset": st.sampled_from(["huge", "", "quick"]), "--workers": strategies.bad_numbers}
    for name in draw(st.lists(st.sampled_from(sorted(options)), max_size=3, unique=True)) if options else []:
        value = draw(options[name])
        argv += [name] if value is None else [name, value]
    if command in ("precompute", "merge") and draw(st.booleans()):
        argv.append("--force")
    return argv


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(["--no-progress", *argv])
        except SystemExit as exit_:
            status = exit_.code
    return status, out.getvalue(), err.getvalue()


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 250)), suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_argument_vector_exits_0_or_2_without_a_traceback(paths, data):
    argv = _argv(data.draw, paths)
    status, _, err = _run(argv)
    assert status in (0, 2), (argv, status, err)
    assert "Traceback" not in err, (argv, err)
    if status == 2:
        assert err.splitlines()[-1].startswith("taylorsketch"), (argv, err)


def test_a_closed_stdout_exits_quietly(paths):
    """As ``taylorsketch ... | head``: the reader is gone before the command prints."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = [sys.executable, "-m", "taylorsketch.cli", "--no-progress", "--json", "predict", paths["sketch"],
            "--doc", "anna", "--delete-indices", "1"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait() == 0 and err == "", err


def test_an_internal_error_is_one_line_asking_for_a_bug_report(monkeypatch, paths):
    def broken(args):
        raise RuntimeError("something the code did not expect")
    monkeypatch.setattr(commands, "cmd_stability", broken)
    status, out, err = _run(["stability", paths["sketch"]])
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and "internal error: RuntimeError" in err and "bug" in err


# ----------------------------------------------------------------------------
# the public jet functions

DTYPES = [np.float64, np.float32, np.int64, np.int8, np.bool_, np.complex128, np.complex64, np.uint8,
          object, "U2"]
ORDERS = st.sampled_from([-1, 0, 1, 2, 3, 12, 1.5, True, None, "2", 2.0, np.int64(2)])


@st.composite
def any_arrays(draw):
    """Arrays of any small shape (empty ones too) and dtype, with NaN or inf sometimes."""
    shape = draw(st.lists(st.integers(0, 3), max_size=3).map(tuple))
    dtype = draw(st.sampled_from(DTYPES))
    values = draw(st.lists(st.sampled_from([0.0, 1.0, -2.5, 0.5, 1e300, -1e-300, np.nan, np.inf, 1j]),
                           min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    flat = np.array(values, dtype=complex).reshape(shape)
    if dtype == "U2":
        return np.full(shape, "ab")
    if dtype == object:
        return flat.astype(object)
    if not np.issubdtype(np.dtype(dtype), np.complexfloating):
        flat = flat.real
    with np.errstate(invalid="ignore", over="ignore"):
        return flat.astype(dtype)


FUNCTIONS = [ts.exp, ts.log, ts.tanh, ts.sin, ts.cos, ts.sqrt, ts.erf, ts.gelu, ts.sigmoid, ts.reciprocal,
             ts.softmax, ts.log_softmax, ts.logsumexp, ts.sum, ts.mean, lambda x: x ** 2.5,
             lambda x: x ** -3, lambda x: 1 / x, lambda x: x @ x, lambda x: ts.reshape(x, (-1,)),
             ts.transpose, lambda x: ts.compose(x, np.ones(3))]


def _allowed(call):
    try:
        with np.errstate(all="ignore"):
            return call()
    except (ValueError, TypeError):
        return None


@FUZZ
@given(any_arrays(), any_arrays(), ORDERS, st.integers(0, len(FUNCTIONS) - 1))
def test_jet_functions_give_a_result_or_a_value_or_type_error(x, v, order, which):
    f = FUNCTIONS[which]
    _allowed(lambda: ts.taylor(f, x, v, order))
    _allowed(lambda: ts.derivatives(f, x, v, order))
    _allowed(lambda: ts.Jet.constant(x, order))
    _allowed(lambda: ts.Jet.from_directions(x, v, order))
    _allowed(lambda: ts.MultiJet(x, v))
    _allowed(lambda: ts.MultiJet.from_directions(x, v))
    _allowed(lambda: ts.MultiJet.constant(x, order))
    jet = _allowed(lambda: ts.Jet(x, v))
    if jet is not None:
        _allowed(lambda: f(jet))
        _allowed(lambda: jet.derivatives())
    # a ts function on a plain numeric array (on other arrays, and for operators, it is numpy's)
    if f.__name__ != "<lambda>" and (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        _allowed(lambda: f(x))


# ----------------------------------------------------------------------------
# the measurement cache across models (the silent wrong answer)


def test_a_measurement_of_another_model_is_refused_not_answered_from_the_cache():
    docs = ["ab", "ba", "abab", "bb"]
    model = ts.MicroGPT(ts.Vocab("ab"), n_embd=4, n_head=2, block_size=8)
    sketch = ts.precompute(model, model.init_params(seed=0), docs, order=1, directions=2, steps=4,
                           progress=False)
    other = ts.MicroGPT(ts.Vocab("ba"), n_embd=4, n_head=2, block_size=8)   # same parameter shapes
    assert other.param_shapes() == model.param_shapes()
    with pytest.raises(ValueError, match="another model"):
        sketch.predict(ts.measure.doc_loss(other, "ab"), [0])
    mine = sketch.predict(ts.measure.doc_loss(model, "ab"), [0]).value
    rebuilt = ts.MicroGPT(ts.Vocab("ab"), n_embd=4, n_head=2, block_size=8)   # as the CLI rebuilds it
    assert sketch.predict(ts.measure.doc_loss(rebuilt, "ab"), [0]).value == mine
    by_hand = model.loss(sketch.primal_params(), "ab")
    assert sketch.coefficients(ts.measure.doc_loss(model, "ab"))[0, 0] == by_hand
