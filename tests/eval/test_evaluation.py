"""Tests for the evaluation engine: items, results.csv, resumption, failures, summary, figures."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from eval_synth import build_manifest
from pyro_minvae.baselines import Enhancer
from pyro_minvae.errors import UserInputError
from pyro_minvae.evaluation import EvalConfig, mean_ci, resolve_methods, run_evaluation, summarise
from pyro_minvae.evaluation.items import load_item, select_items
from pyro_minvae.evaluation.results import ResultsFile

METRICS = ("si_sdr", "stoi")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return build_manifest(tmp_path_factory.mktemp("corpus"), snrs=(-5, 5), noises=("white", "pink"), n_clean=1)


class CountingMethod(Enhancer):
    """Scaled identity that checks it gets the video, counts its calls and can fail on chosen calls."""

    needs_video = True

    def __init__(self, fail_ids=()):
        self.calls = []
        self.videos = []
        self.fail_ids = set(fail_ids)

    def enhance(self, noisy, sample_rate, *, clean=None, video=None, seed=0):
        self.calls.append(seed)
        self.videos.append(video)
        if clean is not None:
            raise AssertionError("the clean reference leaked to a non-oracle method")
        if video is None or "lips" not in video or video["lips"].shape[1:] != (67, 67):
            raise AssertionError("video not passed through")
        if len(self.calls) in self.fail_ids:
            raise RuntimeError("boom\nsecond line")
        return 0.5 * noisy


def _cfg(manifest, out, **kw):
    kw.setdefault("jobs", 1)
    kw.setdefault("metrics", METRICS)
    kw.setdefault("figures", False)
    return EvalConfig(manifest=manifest, out_dir=out, **kw)


def test_full_run_writes_results_summary_and_figures(manifest, tmp_path):
    methods = resolve_methods(["noisy", "wiener-oracle"])
    rep = run_evaluation(_cfg(manifest, tmp_path, figures=True, save_audio=True), methods)
    assert rep.ok and rep.n_items == 4 and rep.n_evaluated == 8
    rows = ResultsFile(tmp_path / "results.csv", METRICS).read()
    assert len(rows) == 8 and all(r["status"] == "ok" for r in rows)
    for r in rows:
        assert r["delta_si_sdr"] == pytest.approx(r["si_sdr"] - r["input_si_sdr"], abs=1e-5)
        if r["method"] == "noisy":
            assert r["si_sdr"] == pytest.approx(r["input_si_sdr"], abs=1e-5)
    summ = json.loads((tmp_path / "summary.json").read_text())
    assert summ["snrs"] == [-5.0, 5.0] and summ["noise_types"] == ["pink", "white"]
    assert summ["settings"]["methods"] == ["noisy", "wiener-oracle"]
    # method x (2 SNR + all) x (2 noise + all) groups
    assert len(summ["groups"]) == 2 * 3 * 3
    g = next(
        g
        for g in summ["groups"]
        if g["method"] == "wiener-oracle" and g["snr_db"] == "all" and g["noise_type"] == "all"
    )
    assert g["n_files"] == 4 and g["stats"]["delta_si_sdr"]["mean"] > 5
    md = (tmp_path / "summary.md").read_text()
    assert "| wiener-oracle |" in md and "### Noise: pink" in md and "nan" not in md.lower()
    for m in METRICS:
        assert (tmp_path / "figures" / f"{m}_vs_snr.png").stat().st_size > 1000
    assert len(list((tmp_path / "figures").glob("spectrograms_*.png"))) == 1
    assert len(list((tmp_path / "audio" / "wiener-oracle").glob("*.wav"))) == 4


def test_rerun_skips_finished_pairs_and_resumes_after_interruption(manifest, tmp_path):
    m1 = CountingMethod()
    assert run_evaluation(_cfg(manifest, tmp_path), {"a": m1}).ok
    assert len(m1.calls) == 4
    # simulate a kill in the middle of writing a row: a partial last line without newline
    with open(tmp_path / "results.csv", "a") as f:
        f.write("b,c1_white_5,spk0,wh")
    m1b, m2 = CountingMethod(), CountingMethod()
    rep = run_evaluation(_cfg(manifest, tmp_path), {"a": m1b, "b": m2})
    assert m1b.calls == [] and len(m2.calls) == 4 and rep.n_evaluated == 4
    rows = ResultsFile(tmp_path / "results.csv", METRICS).read()
    assert sorted((r["method"], r["id"]) for r in rows) == sorted(
        (m, i) for m in "ab" for i in ["c0_pink_-5", "c0_pink_5", "c0_white_-5", "c0_white_5"]
    )
    # per-file seeds do not depend on the order or on resumption
    assert sorted(m1.calls) == sorted(m2.calls) and len(set(m1.calls)) == 4
    # a different metric list cannot append to the same file
    with pytest.raises(UserInputError, match="fresh --out"):
        run_evaluation(_cfg(manifest, tmp_path, metrics=("si_sdr",)), {"a": m1})


def test_resume_refuses_a_method_redefined_under_the_same_name(manifest, tmp_path):
    """Resuming must not mix rows of two definitions of one method name (e.g. other MCEM options)."""
    from pyro_minvae.evaluation.vae_methods import CheckpointMethod

    class Named(CountingMethod):
        def __init__(self, tag):
            super().__init__()
            self.tag = tag

        def __repr__(self):
            return f"Named({self.tag})"

    run_evaluation(_cfg(manifest, tmp_path), {"a": Named("iterations=30")})
    run_evaluation(_cfg(manifest, tmp_path), {"a": Named("iterations=30"), "b": CountingMethod()})  # same: resumes
    with pytest.raises(UserInputError, match="method a was 'Named.iterations=30.', now 'Named.iterations=100.'"):
        run_evaluation(_cfg(manifest, tmp_path), {"a": Named("iterations=100")})
    # checkpoint methods' definitions include their E-step options; a long one is named by what differs
    assert repr(CheckpointMethod("m.pt", "mcem", iterations=100)) != repr(CheckpointMethod("m.pt", "mcem"))
    long_a, long_b = (Named(f"'{'x' * 90}', rank=10, starts=(None, {v}), restarts=4") for v in (0.5, 1.0))
    out = tmp_path / "long"
    run_evaluation(_cfg(manifest, out), {"a": long_a})
    with pytest.raises(UserInputError) as info:
        run_evaluation(_cfg(manifest, out), {"a": long_b})
    assert "(method a: -starts=(None, 0.5) +starts=(None, 1.0))" in str(info.value) and "x" * 90 not in str(info.value)


class Tagged(CountingMethod):
    """A method whose definition (``repr``) is its tag, and whose output depends on it."""

    def __init__(self, tag: float):
        super().__init__()
        self.tag = tag

    def enhance(self, noisy, sample_rate, *, clean=None, video=None, seed=0):
        out = super().enhance(noisy, sample_rate, video=video, seed=seed)
        return out + (1.0 - self.tag) * np.roll(out, 7)  # another tag, another waveform (not only its scale)

    def __repr__(self):
        return f"Tagged({self.tag})"


def _result_rows(folder) -> dict:
    """``{(method, id): row}`` of ``folder/results.csv``."""
    import csv

    with open(folder / "results.csv", newline="") as f:
        return {(r["method"], r["id"]): r for r in csv.DictReader(f)}


def test_redo_changed_runs_again_only_the_methods_whose_definition_changed(manifest, tmp_path):
    run_evaluation(_cfg(manifest, tmp_path), {"a": Tagged(1.0), "b": Tagged(1.0)})
    before = _result_rows(tmp_path)
    a, b = Tagged(0.5), Tagged(1.0)
    with pytest.raises(UserInputError, match="method a was 'Tagged.1.0.', now 'Tagged.0.5.'"):
        run_evaluation(_cfg(manifest, tmp_path), {"a": a, "b": b})
    run_evaluation(_cfg(manifest, tmp_path, redo_changed=True), {"a": a, "b": b})
    after = _result_rows(tmp_path)
    n = len({i for _, i in before})
    assert len(a.calls) == n and b.calls == []  # only the changed method ran again
    assert sorted(after) == sorted(before)  # one row per pair, none lost, none doubled
    assert all(after[k] == before[k] for k in after if k[0] == "b")  # the unchanged method's rows kept as they were
    assert all(after[k]["si_sdr"] != before[k]["si_sdr"] for k in after if k[0] == "a")  # a's rows are new
    run_evaluation(_cfg(manifest, tmp_path), {"a": a, "b": b})  # the folder now records a's new definition
    with pytest.raises(UserInputError, match="seed was 0, now 1"):  # other settings still refuse
        run_evaluation(_cfg(manifest, tmp_path, redo_changed=True, seed=1), {"a": a, "b": b})
    kept = _result_rows(tmp_path)
    with pytest.raises(UserInputError, match=r"seed was 0, now 1.*; use a new --out directory or --restart"):
        run_evaluation(_cfg(manifest, tmp_path, redo_changed=True, seed=1), {"a": Tagged(0.25), "b": b})
    assert _result_rows(tmp_path) == kept  # a refused run drops nothing, not even the rows of the method it redefines
    with pytest.raises(ValueError, match="without a shard"):
        _cfg(manifest, tmp_path, redo_changed=True, shard=(1, 2))


def test_failures_are_recorded_and_retried(manifest, tmp_path):
    flaky = CountingMethod(fail_ids={2})
    rep = run_evaluation(_cfg(manifest, tmp_path), {"flaky": flaky, "noisy": resolve_methods(["noisy"])["noisy"]})
    assert len(rep.bad) == 1
    bad = rep.bad[0]
    assert bad["method"] == "flaky" and bad["reason"] == "method: RuntimeError: boom second line"
    g = next(
        g for g in rep.summary["groups"] if g["method"] == "flaky" and g["snr_db"] == "all" and g["noise_type"] == "all"
    )
    assert g["n_files"] == 4 and g["n_failed"] == 1 and g["stats"]["si_sdr"]["n"] == 3
    md = (tmp_path / "summary.md").read_text()
    assert "(n=3)" in md and "Failed (method, file) pairs" in md
    # the rerun retries only the failed pair, and it now succeeds
    fixed = CountingMethod()
    rep2 = run_evaluation(_cfg(manifest, tmp_path), {"flaky": fixed, "noisy": resolve_methods(["noisy"])["noisy"]})
    assert len(fixed.calls) == 1 and rep2.ok


def test_bad_file_is_reported_and_the_run_continues(tmp_path):
    m = build_manifest(tmp_path / "corpus", snrs=(0,), noises=("white", "pink"), n_clean=1)
    (tmp_path / "corpus" / "ref0_pink_0.wav").unlink()
    silent = tmp_path / "corpus" / "ref0_white_0.wav"
    import soundfile as sf

    sf.write(silent, np.zeros(32000, np.float32), 16000)
    rep = run_evaluation(_cfg(m, tmp_path / "out"), resolve_methods(["noisy", "wiener-oracle"]))
    reasons = {(b["id"], b["method"]): b["reason"] for b in rep.bad}
    assert set(reasons) == {(i, mm) for i in ("c0_pink_0", "c0_white_0") for mm in ("noisy", "wiener-oracle")}
    assert "file not found" in reasons[("c0_pink_0", "noisy")]
    assert "reference is silent" in reasons[("c0_white_0", "noisy")]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["bad"]


def test_two_worker_processes_give_the_same_results(manifest, tmp_path):
    methods = resolve_methods(["noisy", "spectral-gating-stationary"])
    run_evaluation(_cfg(manifest, tmp_path / "j1", metrics=("si_sdr",)), methods)
    rep = run_evaluation(_cfg(manifest, tmp_path / "j2", metrics=("si_sdr",), jobs=2), methods)
    assert rep.ok
    a = {(r["method"], r["id"]): r["si_sdr"] for r in ResultsFile(tmp_path / "j1" / "results.csv", ("si_sdr",)).read()}
    b = {(r["method"], r["id"]): r["si_sdr"] for r in ResultsFile(tmp_path / "j2" / "results.csv", ("si_sdr",)).read()}
    assert a.keys() == b.keys() and len(a) == 8
    for k in a:
        assert a[k] == pytest.approx(b[k], abs=1e-5)


def test_select_items_filters_and_balances(tmp_path):
    m = build_manifest(tmp_path, snrs=(-5, 0, 5), noises=("white", "pink"), n_clean=2, with_video=False)
    assert len(select_items(m)) == 12
    assert {r["snr_db"] for r in select_items(m, snrs=[0])} == {0}
    sub = select_items(m, limit=6)
    assert len(sub) == 6 and len({(r["snr_db"], r["noise_type"]) for r in sub}) == 6
    with pytest.raises(UserInputError, match="no mixture records"):
        select_items(m, split="train")
    item = load_item(select_items(m)[0], m)
    assert item.video == {} and item.noisy.shape == item.clean.shape and item.noisy.dtype == np.float32


def test_mean_ci_matches_student_t():
    x = [1.0, 2.5, 3.0, 4.5, 2.0]
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    st = mean_ci(x)
    assert st["mean"] == pytest.approx(np.mean(x)) and st["ci95"] == pytest.approx((hi - lo) / 2)
    assert mean_ci([2.0]) == {"mean": 2.0, "ci95": None, "n": 1}
    assert mean_ci([]) == {"mean": None, "ci95": None, "n": 0}
    assert mean_ci([1.0, math.nan, 3.0])["n"] == 2


def test_summarise_groups_by_snr_and_noise():
    rows = [
        {"method": "a", "id": str(i), "snr_db": float(s), "noise_type": n, "status": "ok", "si_sdr": float(v)}
        for i, (s, n, v) in enumerate([(0, "x", 1), (0, "y", 3), (5, "x", 5), (5, "y", 7)])
    ]
    summ = summarise(rows, ["si_sdr"])

    def get(s, n):
        return next(g for g in summ["groups"] if g["snr_db"] == s and g["noise_type"] == n)["stats"]["si_sdr"]

    assert get(0.0, "all")["mean"] == 2 and get("all", "x")["mean"] == 3 and get("all", "all")["mean"] == 4
    assert get(5.0, "y") == {"mean": 7.0, "ci95": None, "n": 1}


def test_video_degradation_reaches_the_methods(manifest, tmp_path):
    plain, shifted = CountingMethod(), CountingMethod()
    run_evaluation(_cfg(manifest, tmp_path / "a", metrics=("si_sdr",)), {"m": plain})
    run_evaluation(_cfg(manifest, tmp_path / "b", metrics=("si_sdr",), video_degradation="shift:2"), {"m": shifted})
    by_seed = {s: v for s, v in zip(plain.calls, plain.videos)}
    for s, v in zip(shifted.calls, shifted.videos):
        np.testing.assert_array_equal(v["lips"][2:], by_seed[s]["lips"][:-2])
        assert v["fps"] == 30.0
    # the same --out cannot mix degraded and clean-video results
    with pytest.raises(UserInputError, match="video_degradation was 'shift:2', now None"):
        run_evaluation(_cfg(manifest, tmp_path / "b", metrics=("si_sdr",)), {"m": plain})


class Interrupting(CountingMethod):
    """Simulates Ctrl-C / a killed run on the n-th call."""

    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def enhance(self, noisy, sample_rate, *, clean=None, video=None, seed=0):
        if len(self.calls) + 1 == self.at:
            raise KeyboardInterrupt
        return super().enhance(noisy, sample_rate, clean=clean, video=video, seed=seed)

    def __repr__(self):  # the same method as the CountingMethod that resumes it, only killed
        return "CountingMethod()"


def test_interrupted_run_keeps_finished_files_and_resumes(manifest, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_evaluation(_cfg(manifest, tmp_path, metrics=("si_sdr",)), {"m": Interrupting(at=3)})
    assert len(ResultsFile(tmp_path / "results.csv", ("si_sdr",)).read()) == 2
    rest = CountingMethod()
    rep = run_evaluation(_cfg(manifest, tmp_path, metrics=("si_sdr",)), {"m": rest})
    assert rep.ok and len(rest.calls) == 2 and rep.n_evaluated == 2
    assert len(ResultsFile(tmp_path / "results.csv", ("si_sdr",)).read()) == 4


class WithResponsibilities(CountingMethod):
    """Exposes per-frame responsibilities after each call, like the MIN-VAE methods."""

    reports_info = True

    def enhance(self, noisy, sample_rate, *, clean=None, video=None, seed=0):
        n = 1 + noisy.size // 533
        self.last_info = {
            "responsibilities": np.linspace(0, 1, n),
            "frame_rate": sample_rate / 533,
            "component_names": ["audio", "lips"],
        }
        return super().enhance(noisy, sample_rate, clean=clean, video=video, seed=seed)


def test_responsibility_figure_for_methods_that_expose_them(manifest, tmp_path):
    rep = run_evaluation(
        _cfg(manifest, tmp_path, metrics=("si_sdr",), figures=True, example_id="c0_pink_5"),
        {"mix": WithResponsibilities(), "plain": CountingMethod()},
    )
    assert rep.ok
    figs = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert figs == ["responsibilities_mix_c0_pink_5.png", "si_sdr_vs_snr.png", "spectrograms_c0_pink_5.png"]
    assert rep.paths["fig_responsibilities_mix"].endswith("responsibilities_mix_c0_pink_5.png")


def test_resume_with_nothing_left_keeps_the_example_figures_without_running_the_methods(manifest, tmp_path):
    """The example spectrograms re-run every method on one file; a resume that scores nothing keeps the ones drawn
    for the same file and methods instead (stop 28 measured 7 min of that on the demo), and redraws otherwise."""
    cfg = _cfg(manifest, tmp_path, metrics=("si_sdr",), figures=True, example_id="c0_pink_5")
    first = {"mix": WithResponsibilities(), "plain": CountingMethod()}
    rep = run_evaluation(cfg, first)
    assert len(first["plain"].calls) == 5  # 4 files + the example
    again = {"mix": WithResponsibilities(), "plain": CountingMethod()}
    rep2 = run_evaluation(cfg, again)
    assert rep2.n_evaluated == 0 and again["plain"].calls == [] and again["mix"].calls == []
    for key in ("fig_spectrograms", "fig_responsibilities_mix"):
        assert rep2.paths[key] == rep.paths[key]
    (tmp_path / "figures" / "spectrograms_c0_pink_5.png").unlink()  # a recorded figure gone: drawn again
    third = {"mix": WithResponsibilities(), "plain": CountingMethod()}
    run_evaluation(cfg, third)
    assert len(third["plain"].calls) == 1 and (tmp_path / "figures" / "spectrograms_c0_pink_5.png").is_file()
    fewer = {"plain": CountingMethod()}  # another method set: the recorded figure does not apply
    rep4 = run_evaluation(cfg, fewer)
    assert len(fewer["plain"].calls) == 1 and "fig_responsibilities_mix" not in rep4.paths


class AtPath(Tagged):
    """A method whose definition names a checkpoint path first, as a checkpoint method's does."""

    def __init__(self, path: str, tag: float = 1.0):
        super().__init__(tag)
        self.path = path

    def __repr__(self):
        return f"CheckpointMethod({self.path!r}, estep='fast', tag={self.tag})"


def test_the_same_checkpoint_method_read_from_another_folder_keeps_its_results(manifest, tmp_path):
    run_evaluation(_cfg(manifest, tmp_path), {"a": AtPath("/clone1/pretrained/avae.pt")})
    before = _result_rows(tmp_path)
    moved = AtPath("/clone2/pretrained/avae.pt")  # the same files from another clone: compared by their contents
    run_evaluation(_cfg(manifest, tmp_path, redo_changed=True), {"a": moved})
    assert moved.calls == [] and _result_rows(tmp_path) == before  # nothing dropped, nothing run again
    with pytest.raises(UserInputError, match="method a was"):  # another option is still another method
        run_evaluation(_cfg(manifest, tmp_path), {"a": AtPath("/clone2/pretrained/avae.pt", tag=0.5)})
