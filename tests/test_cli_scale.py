"""The command line's scaling options (``taylorsketch/cli.py``): ``precompute
--folder`` (a sketch folder), ``--resume``, ``predict`` on a folder, and
``--scheduler`` on a real Dask cluster (skipped without dask)."""

import os

import numpy as np
import pytest

import taylorsketch as ts
from taylorsketch.cli import main
from test_cli import DATA, SKETCH, run, run_json


def test_a_folder_sketch_predicts_as_the_file_sketch(capsys, tmp_path):
    report = run_json(capsys, "precompute", *SKETCH, "--batch-size", "3", "--folder", "--out", str(tmp_path / "f"))
    assert report["n_directions"] == 8
    assert sorted(os.listdir(tmp_path / "f")) == ["manifest.json", "shard-00000.npz", "shard-00001.npz",
                                                  "shard-00002.npz"]
    assert main(["--no-progress", "precompute", *SKETCH, "--out", str(tmp_path / "s.npz")]) == 0
    capsys.readouterr()
    on_folder = run_json(capsys, "predict", str(tmp_path / "f"), "--doc", "max", "--delete-indices", "2,8")
    on_file = run_json(capsys, "predict", str(tmp_path / "s.npz"), "--doc", "max", "--delete-indices", "2,8")
    assert on_folder["value"] == on_file["value"] and on_folder["stderr"] == on_file["stderr"]


def test_an_interrupted_folder_is_resumed(capsys, tmp_path):
    out = tmp_path / "f"
    assert main(["--no-progress", "precompute", *SKETCH, "--batch-size", "3", "--folder", "--out", str(out)]) == 0
    os.remove(out / "shard-00001.npz")             # as if the run had stopped before this batch
    kept = os.stat(out / "shard-00000.npz").st_ino
    status, _, err = run(capsys, "predict", str(out), "--doc", "max", "--delete-indices", "2")
    assert status == 2 and "shard-00001.npz" in err and "resume" in err
    status, _, err = run(capsys, "precompute", *SKETCH, "--batch-size", "3", "--folder", "--out", str(out))
    assert status == 2 and "--resume" in err
    status, _, err = run(capsys, "precompute", *SKETCH, "--seed", "1", "--batch-size", "3", "--folder",
                         "--resume", "--out", str(out))
    assert status == 2 and "another run" in err and "'seed'" in err
    assert run_json(capsys, "precompute", *SKETCH, "--batch-size", "3", "--folder", "--resume",
                    "--out", str(out))["n_directions"] == 8
    assert os.stat(out / "shard-00000.npz").st_ino == kept
    whole = ts.Sketch.load(tmp_path / "f")
    assert main(["--no-progress", "precompute", *SKETCH, "--out", str(tmp_path / "s.npz")]) == 0
    assert np.array_equal(np.asarray(whole.series), ts.Sketch.load(tmp_path / "s.npz").series)


@pytest.mark.parametrize("argv, message", [
    (["--folder", "--force"], "never overwritten"),
    (["--resume"], "--resume continues a sketch folder"),
    (["--folder", "--documents"], "documents sketch is one file"),
    (["--scheduler", "tcp://127.0.0.1:9", "--workers", "2"], "--workers is for a local run"),
])
def test_bad_combinations_are_user_errors(capsys, tmp_path, argv, message):
    status, _, err = run(capsys, "precompute", *DATA, "--order", "1", "--directions", "2",
                         "--out", str(tmp_path / "f"), *argv)
    assert status == 2 and message in err, err
    assert not os.path.exists(tmp_path / "f")


def test_precompute_on_a_dask_scheduler(capsys, tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed "
                                      "(pip install -e '.[dask]')")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None, silence_logs=40) as cluster:
        report = run_json(capsys, "precompute", *SKETCH, "--batch-size", "4", "--folder",
                          "--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "f"))
    assert report["n_directions"] == 8
    assert main(["--no-progress", "precompute", *SKETCH, "--batch-size", "4", "--out", str(tmp_path / "s.npz")]) == 0
    assert np.array_equal(np.asarray(ts.Sketch.load(tmp_path / "f").series),
                          ts.Sketch.load(tmp_path / "s.npz").series)
