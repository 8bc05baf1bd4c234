"""The reproduction pipeline, end to end on a tiny preset: files written, the
report's claims, resume, missing matplotlib, Ctrl-C and unwritable folders."""

import json

import numpy as np
import pytest

from taylorsketch import cli, report, reproduce

TINY = {"n_docs": 40, "steps": 40,
        "fig1": {"order": 5, "directions": 2, "seed": 0, "doc_index": 0, "batch_size": 2},
        "fig2": {"order": 4, "fd_step": 1e-3},
        "fig3": {"order": 2, "directions": 8, "seed": 0, "batch_size": 8}}


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(reproduce.PRESETS, "tiny", TINY)
    return "tiny"


def run_cli(capsys, argv):
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(reproduce.PRESETS, "tiny", TINY)
        data, text = reproduce.run("all", preset="tiny", out=str(out), workers=1)
    return out, data, text


def test_all_writes_every_file(full_run):
    out, data, text = full_run
    for name in ("fig1", "fig2", "fig3"):
        result = json.loads((out / f"{name}.json").read_text())
        assert result["preset"] == "tiny" and result["config"] == TINY and result["version"]
        assert result["timings"]["total_seconds"] > 0
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    for claim in ("superlinear", "falls with k", "error band", "unbiased"):
        assert claim in report
    table = text.splitlines()
    assert table[0].split() == ["figure", "time", "result"]
    assert [row.split()[0] for row in table[2:5]] == ["fig1", "fig2", "fig3"]
    assert "error at t=1 of degree 1..4" in table[3]


def test_fig2_numbers_are_consistent(full_run):
    out, _, _ = full_run
    r = json.loads((out / "fig2.json").read_text())
    coeffs, t = np.array(r["coefficients"]), np.array(r["t"])
    assert len(r["true_loss"]) == 11 and t[0] == 0 and t[-1] == 1
    # the primal of the jets is the ordinary training run (t = 0)
    assert coeffs[0] == pytest.approx(r["true_loss"][0], abs=1e-12)
    # truncation k at t is sum_{r<=k} c_r t^r, and the errors are against the truth at t = 1
    assert r["truncations"][2][-1] == pytest.approx(coeffs[:3].sum(), rel=1e-12)
    assert np.allclose(r["error_at_t1"], np.abs(np.cumsum(coeffs)[1:] - r["true_loss"][-1]), rtol=1e-12)
    # jets against central differences of retraining
    assert r["checks"]["c1_rel_diff"] < 1e-4 and r["checks"]["c2_rel_diff"] < 1e-2


def test_fig1_and_fig3_numbers_are_consistent(full_run):
    out, _, _ = full_run
    r1 = json.loads((out / "fig1.json").read_text())
    assert np.array(r1["log2_norm"]).shape == (2, 5)
    r3 = json.loads((out / "fig3.json").read_text())
    fig2 = json.loads((out / "fig2.json").read_text())
    assert r3["true_loss"] == fig2["true_loss"]
    # the exact degree-2 polynomial is fig2's coefficients truncated
    assert np.allclose(r3["exact_coefficients"], fig2["coefficients"][:3], rtol=1e-10)
    value, stderr = np.array(r3["predicted"]["2"]["value"]), np.array(r3["predicted"]["2"]["stderr"])
    band = np.abs(value - r3["true_loss"]) <= stderr + 1e-12 * np.abs(r3["true_loss"])
    assert r3["truth_within_one_stderr"] == band.tolist()
    assert r3["truth_within_one_stderr"][0]        # t = 0: the unperturbed value, exact


def test_resume_reuses_completed_figures(tiny, tmp_path, capsys, monkeypatch):
    reproduce.run("fig2", preset=tiny, out=str(tmp_path), workers=1)
    before = (tmp_path / "fig2.json").read_text()
    # the command line's default: an earlier run is neither overwritten nor silently reused
    with pytest.raises(reproduce.ReproductionError, match="holds fig2.json.* of an earlier run"):
        reproduce.run("fig2", preset=tiny, out=str(tmp_path), workers=1, force=False)

    def must_not_run(ctx):
        raise AssertionError("recomputed a completed figure")
    monkeypatch.setitem(reproduce.EXPERIMENTS, "fig2", must_not_run)
    reproduce.run("fig2", preset=tiny, out=str(tmp_path), workers=1, resume=True)
    assert (tmp_path / "fig2.json").read_text() == before
    assert "reusing" in capsys.readouterr().err


def test_progress_names_the_figure_and_the_run_ends_with_one_summary_line(tiny, tmp_path, capsys):
    reproduce.run("fig2", preset=tiny, out=str(tmp_path), workers=1, progress=True)
    err = capsys.readouterr().err
    assert "fig2 (1/1): retraining, 11 weights t:" in err             # the truth, its own bar
    assert "fig2 (1/1): jet training, order 4, 1 exact direction:" in err
    lines = [piece.split("\r")[-1] for piece in err.split("\n")]
    summaries = [line for line in lines if " in " in line and "wrote" in line]
    assert len(summaries) == 1 and summaries[0].startswith("reproduce fig2 (tiny preset): fig2 in ")
    assert summaries[0].endswith(f"; wrote {tmp_path}")
    assert not any("direction-steps in" in line for line in lines)    # the figure's line is its summary


def test_quiet_reproduction_prints_nothing_on_stderr(tiny, tmp_path, capsys):
    status, out, err = run_cli(capsys, ["--quiet", "reproduce", "fig2", "--preset", tiny, "--workers", "1",
                                        "--out", str(tmp_path)])
    assert status == 0 and err == ""
    assert "fig2" in out and f"results in {tmp_path}" in out


def test_missing_matplotlib_still_writes_numbers(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(report, "_pyplot", lambda: None)
    _, text = reproduce.run("fig2", preset=tiny, out=str(tmp_path), workers=1)
    assert (tmp_path / "fig2.json").exists() and not (tmp_path / "fig2.png").exists()
    assert "matplotlib is not installed" in text and "pip install" in text


def test_ctrl_c_keeps_finished_figures_and_says_what_is_missing(tiny, tmp_path, capsys, monkeypatch):
    def interrupted(ctx):
        raise KeyboardInterrupt
    monkeypatch.setitem(reproduce.EXPERIMENTS, "fig3", interrupted)
    status, _, err = run_cli(capsys, ["reproduce", "all", "--preset", tiny, "--workers", "1",
                                      "--out", str(tmp_path)])
    assert status == 130
    assert "finished ['fig1', 'fig2']" in err and "not finished: ['fig3']" in err
    for name in ("fig1", "fig2"):
        assert json.loads((tmp_path / f"{name}.json").read_text())["figure"] == name
    assert not (tmp_path / "fig3.json").exists() and not (tmp_path / "report.md").exists()


def test_user_errors(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    status, _, err = run_cli(capsys, ["reproduce", "fig2", "--out", str(blocker / "sub")])
    assert status == 2 and "cannot create output folder" in err
    for argv in (["reproduce", "fig9"], ["reproduce", "all", "--preset", "huge"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        assert exit_.value.code == 2
        assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(reproduce.ReproductionError, match="unknown preset"):
        reproduce.run("fig2", preset="huge", out=str(tmp_path))
