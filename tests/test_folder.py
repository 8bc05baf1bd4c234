"""Sketches on disk (``taylorsketch/folder.py``, ``taylorsketch/shards.py``):
``precompute(..., out=FOLDER)`` against the in-memory sketch (to the bit), lazy
loading, interrupting and resuming, and damaged or mismatched folders.
The same on a Dask cluster is in ``test_dask.py``.
"""

import json
import os
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest

import taylorsketch as ts
from taylorsketch.sketch import Sketch
from taylorsketch.sketch_file import SketchFileError
from test_parallel import STEPS, _directions, assert_same_sketch, one_process


@pytest.fixture(scope="module")
def tiny():
    docs = [d for d in ts.load_names() if set(d) <= set("abcdefgh") and len(d) <= 7][:12]
    model = ts.MicroGPT(ts.Vocab("abcdefgh"), n_embd=8, n_head=2, block_size=8)
    return model, model.init_params(seed=0), docs


def to_folder(tiny, out, kind="random", **kwargs):
    model, init, docs = tiny
    directions, batch = _directions(docs)[kind]
    args = dict(order=2, directions=directions, steps=STEPS, batch_size=batch, progress=False)
    return ts.precompute(model, init, docs, out=out, **{**args, **kwargs})


def shard_files(folder):
    return sorted(f for f in os.listdir(folder) if f.startswith("shard-"))


@pytest.mark.parametrize("kind", ["random", "explicit"])
def test_a_folder_sketch_is_the_in_memory_sketch(tiny, tmp_path, kind):
    on_disk = to_folder(tiny, tmp_path / "s", kind)
    in_memory = one_process(tiny, kind)
    assert len(shard_files(tmp_path / "s")) == {"random": 3, "explicit": 2}[kind] and os.path.exists(tmp_path / "s" / "manifest.json")
    assert_same_sketch(Sketch(on_disk.model, on_disk.primal, np.asarray(on_disk.series), on_disk.directions,
                              on_disk.direction_ids, on_disk.meta), in_memory)
    phi = ts.measure.doc_loss(tiny[0], "bad")
    assert np.array_equal(on_disk.coefficients(phi), in_memory.coefficients(phi))
    deleted = [1, 4] if kind == "explicit" else [2, 5]
    assert on_disk.predict(phi, deleted).value == in_memory.predict(phi, deleted).value


def test_each_shard_is_a_sketch_and_the_shards_merge(tiny, tmp_path):
    to_folder(tiny, tmp_path / "s")
    shards = [Sketch.load(tmp_path / "s" / f) for f in shard_files(tmp_path / "s")]
    assert [s.direction_ids.tolist() for s in shards] == [[0, 1], [2, 3], [4, 5]]
    assert np.array_equal(Sketch.merge(shards, complete=True).series, one_process(tiny, "random").series)


def test_loading_a_folder_reads_no_series(tiny, tmp_path):
    """The series are memory maps; damage in a shard's series is found when a
    measurement reads that shard (its zip checksum), not at load."""
    to_folder(tiny, tmp_path / "s")
    sketch = Sketch.load(tmp_path / "s")
    assert all(isinstance(piece, np.memmap) for piece in sketch.series.pieces)
    assert sketch.series.shape == (2, 6, one_process(tiny, "random").series.shape[2])
    assert np.shares_memory(sketch.series[:, 2:4], sketch.series.pieces[1])      # a view, no copy
    path = tmp_path / "s" / "shard-00001.npz"
    raw = bytearray(path.read_bytes())
    at = len(raw) // 2            # inside the series, the bulk of the file
    raw[at:at + 8] = np.float64(np.nan).tobytes()
    path.write_bytes(bytes(raw))
    damaged = Sketch.load(tmp_path / "s")                # still loads: no series value read
    with pytest.raises(SketchFileError, match="shard-00001"):
        damaged.coefficients(ts.measure.doc_loss(tiny[0], "bad"))


class FailingExecutor:
    """Runs jobs in this process, except that job ``fail_at`` fails: a worker lost mid-run."""

    def __init__(self, fail_at):
        self.fail_at, self.submitted = fail_at, 0

    def submit(self, fn, job):
        future = Future()
        if self.submitted == self.fail_at:
            future.set_exception(RuntimeError("worker lost"))
        else:
            future.set_result(fn(job))
        self.submitted += 1
        return future


def test_an_interrupted_run_resumes_to_the_same_bits(tiny, tmp_path):
    out = tmp_path / "s"
    with pytest.raises(RuntimeError, match="worker lost"):
        to_folder(tiny, out, executor=FailingExecutor(fail_at=1))
    finished = {f: os.stat(out / f) for f in shard_files(out)}
    assert list(finished) == ["shard-00000.npz", "shard-00002.npz"]
    with pytest.raises(SketchFileError, match="shard-00001.*missing.*resume"):
        Sketch.load(out)
    with pytest.raises(FileExistsError, match="resume"):
        to_folder(tiny, out)
    calls = FailingExecutor(fail_at=-1)
    resumed = to_folder(tiny, out, resume=True, executor=calls)
    assert calls.submitted == 1                           # only the missing batch was trained
    for f, before in finished.items():                    # finished shards kept, not rewritten
        assert os.stat(out / f).st_ino == before.st_ino and os.stat(out / f).st_mtime_ns == before.st_mtime_ns
    assert np.array_equal(np.asarray(resumed.series), one_process(tiny, "random").series)


def test_resuming_with_other_arguments_is_refused(tiny, tmp_path):
    out = tmp_path / "s"
    with pytest.raises(RuntimeError):
        to_folder(tiny, out, executor=FailingExecutor(fail_at=1))
    before = sorted(os.listdir(out))
    for change, what in ((dict(seed=1), "seed"), (dict(order=3), "order"), (dict(batch_size=3), "shards"),
                         (dict(steps=STEPS - 1), "training")):
        with pytest.raises(ValueError, match=f"another run.*{what}"):
            to_folder(tiny, out, resume=True, **change)
    model, init, docs = tiny
    with pytest.raises(ValueError, match="another run.*fingerprint"):
        ts.precompute(model, init, docs[::-1], order=2, directions=6, steps=STEPS, batch_size=2,
                      progress=False, out=out, resume=True)
    assert sorted(os.listdir(out)) == before


def test_mismatched_or_damaged_shards_are_a_sketch_file_error(tiny, tmp_path):
    good, other = tmp_path / "good", tmp_path / "other"
    to_folder(tiny, good)
    to_folder(tiny, other, seed=1)

    def damaged(name, change):
        folder = tmp_path / name
        folder.mkdir()
        for f in os.listdir(good):
            (folder / f).write_bytes((good / f).read_bytes())
        change(folder)
        return folder

    cases = {
        "another run": (lambda f: (f / "shard-00001.npz").write_bytes((other / "shard-00001.npz").read_bytes()),
                        "shard-00001.npz: a shard of another run .'seed'"),
        "swapped": (lambda f: (f / "shard-00001.npz").write_bytes((good / "shard-00002.npz").read_bytes()),
                    "shard-00001.npz: holds other directions"),
        "truncated": (lambda f: (f / "shard-00000.npz").write_bytes((good / "shard-00000.npz").read_bytes()[:500]),
                      "shard-00000.npz: not a readable shard"),
        "missing": (lambda f: os.remove(f / "shard-00002.npz"), "shard-00002.npz .directions 4..5. is missing"),
        "manifest": (lambda f: (f / "manifest.json").write_text("{not json"), "manifest.json"),
        "escape": (lambda f: _edit_manifest(f, lambda m: m["shards"][0].update(file="../good/shard-00000.npz")),
                   "shard entries must be files in the folder"),
        "overlap": (lambda f: _edit_manifest(f, lambda m: m["shards"][1].update(start=1)),
                    "consecutive"),
        "no manifest": (lambda f: os.remove(f / "manifest.json"), "not a sketch folder"),
    }
    for name, (change, message) in cases.items():
        with pytest.raises(SketchFileError, match=message):
            Sketch.load(damaged(name.replace(" ", "_"), change))


def _edit_manifest(folder, edit):
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_coefficients_of_a_folder_on_an_executor(tiny, tmp_path):
    sketch = to_folder(tiny, tmp_path / "s")
    phi = ts.measure.doc_loss(tiny[0], "bad")
    with ThreadPoolExecutor(max_workers=2) as pool:
        assert np.array_equal(Sketch.load(tmp_path / "s").coefficients(phi, executor=pool),
                              one_process(tiny, "random").coefficients(phi))
        with pytest.raises(ValueError, match="sketch folder"):
            one_process(tiny, "random").coefficients(phi, executor=pool)
    assert sketch.coefficients(phi).shape == (6, 3)


def test_out_refuses_documents_and_files(tiny, tmp_path):
    with pytest.raises(ValueError, match="documents"):
        to_folder(tiny, tmp_path / "d", "documents")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        to_folder(tiny, tmp_path / "file")


def test_coefficients_of_a_folder_on_worker_processes(tiny, tmp_path):
    """doc_loss and logprob are pickled to a spawned process and give the same bits."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    model = tiny[0]
    to_folder(tiny, tmp_path / "s")
    here = one_process(tiny, "random")
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        for phi in (ts.measure.doc_loss(model, "bad"), ts.measure.logprob(model, "ab", "c")):
            assert np.array_equal(Sketch.load(tmp_path / "s").coefficients(phi, executor=pool),
                                  here.coefficients(phi))


def test_progress_of_a_resumed_folder_counts_the_missing_batches(tiny, tmp_path):
    from taylorsketch.progress import Bar
    out = tmp_path / "s"
    bar = Bar(False)
    to_folder(tiny, out, progress=bar)
    assert (bar.n, bar.total) == (STEPS * 6, STEPS * 6)
    os.remove(out / "shard-00001.npz")
    bar = Bar(False)
    to_folder(tiny, out, progress=bar, resume=True)
    assert (bar.n, bar.total) == (STEPS * 2, STEPS * 2)       # one batch of 2 directions left


def test_folders_of_two_shards_merge_and_save_as_one_file(tiny, tmp_path):
    """``num_shards`` blocks written as two folders (e.g. two clusters) merge into the
    one-process sketch; a folder sketch saves as an ordinary file."""
    halves = [Sketch.load(to_folder(tiny, tmp_path / f"half{i}", shard=i, num_shards=2).shard_files[0])
              for i in (0, 1)]
    folders = [Sketch.load(tmp_path / f"half{i}") for i in (0, 1)]
    assert [s.direction_ids.tolist() for s in folders] == [[0, 1, 2], [3, 4, 5]]
    whole = one_process(tiny, "random")
    merged = Sketch.merge(folders)
    assert np.array_equal(merged.series, whole.series) and np.array_equal(merged.directions, whole.directions)
    folders[0].save(tmp_path / "half0.npz")
    assert np.array_equal(Sketch.load(tmp_path / "half0.npz").series, whole.series[:, :3])
    assert halves[0].direction_ids.tolist() == [0, 1]
