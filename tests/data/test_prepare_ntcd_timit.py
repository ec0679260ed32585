"""`prepare ntcd-timit` on a tiny fake tree in the published layout (synthetic content)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from pyro_minvae.data.manifest import read_manifest, resolve
from pyro_minvae.data.prepare.ntcd_timit import assign_splits, index_ntcd_timit, prepare_ntcd_timit
from pyro_minvae.errors import UserInputError
from prepare_fakes import speechlike


def _tree(root, bad_lips=False):
    rng = np.random.default_rng(0)
    frames = {}
    for i, spk in enumerate(["01M", "02F", "03M", "09F", "56M"]):
        for j, sent in enumerate(["sa1", "si1373"]):
            d = root / "clean" / spk
            d.mkdir(parents=True, exist_ok=True)
            w = speechlike(1.5, 10 * i + j)
            sf.write(str(d / f"{sent}.wav"), w, 16000)
            n = 20 if (bad_lips and spk == "09F") else 45
            f = rng.integers(0, 255, (n, 67, 67)).astype(np.uint8)
            frames[(spk, sent)] = f
            if j == 0:  # the MIN-VAE authors' *Raw.npy: (4489, N), column-major frames
                np.save(d / f"{sent}Raw.npy", np.stack([x.flatten(order="F") for x in f], axis=1))
            else:  # a MATLAB file in a separate lips folder
                from scipy.io import savemat

                (root / "lips" / spk).mkdir(parents=True, exist_ok=True)
                savemat(root / "lips" / spk / f"{sent}.mat", {"roi": np.transpose(f, (1, 2, 0))})
            for noise in ("Babble", "LR"):
                for snr in (-5, 10):
                    nd = root / "noisy" / noise / str(snr) / "volunteers" / spk / "straightcam"
                    nd.mkdir(parents=True, exist_ok=True)
                    sf.write(str(nd / f"{sent}.wav"), w + 0.1 * rng.standard_normal(w.size), 16000)
    return frames


def test_ntcd_layout_is_indexed(tmp_path):
    frames = _tree(tmp_path / "NTCD")
    path = prepare_ntcd_timit(tmp_path / "NTCD", tmp_path / "out", valid_speakers=["02F"], progress=False)
    recs = read_manifest(path)
    clean = {r["id"]: r for r in recs if r["kind"] == "clean"}
    mixes = [r for r in recs if r["kind"] == "mixture"]
    assert len(clean) == 10
    assert {r["speaker"]: r["split"] for r in clean.values()} == {
        "01M": "train",
        "02F": "valid",
        "03M": "train",
        "09F": "test",
        "56M": "test",
    }
    for (spk, sent), f in frames.items():
        np.testing.assert_array_equal(np.load(resolve(path, clean[f"{spk}_{sent}"]["lips"])), f)
    # noisy files of test and valid speakers only: 3 speakers x 2 sentences x 2 noises x 2 SNRs
    assert len(mixes) == 24
    assert {m["noise_type"] for m in mixes} == {"Babble", "LR"}
    assert {m["snr_db"] for m in mixes} == {-5.0, 10.0}
    m = next(r for r in mixes if r["id"] == "09F_sa1__Babble_m05")
    assert m["clean_id"] == "09F_sa1" and m["lips"] == clean["09F_sa1"]["lips"] and m["gain"] == 1.0
    assert resolve(path, m["clean"]).exists()


def test_all_noisy_and_default_valid_rule(tmp_path):
    _tree(tmp_path / "NTCD")
    path = prepare_ntcd_timit(tmp_path / "NTCD", tmp_path / "out", all_noisy=True, progress=False)
    assert len([r for r in read_manifest(path) if r["kind"] == "mixture"]) == 40
    sp = assign_splits([f"{i:02d}M" for i in range(1, 20)] + ["09F"])
    assert sp["09F"] == "test" and list(sp.values()).count("valid") == 3


def test_bad_files_are_skipped_and_listed(tmp_path):
    """Lips of the wrong length, a corrupt clean wav and a corrupt noisy wav: each is skipped with its reason
    (the sentence, with its noisy versions, or the one noisy file), the rest is indexed."""
    _tree(tmp_path / "NTCD", bad_lips=True)
    (tmp_path / "NTCD/clean/01M/sa1.wav").write_bytes(b"RIFF" + b"junk" * 50)
    (tmp_path / "NTCD/noisy/LR/10/volunteers/56M/straightcam/sa1.wav").write_bytes(b"")
    path, skipped = index_ntcd_timit(tmp_path / "NTCD", tmp_path / "out", progress=False)
    files = sorted(s["file"] for s in skipped)
    assert files == [
        "clean/01M/sa1.wav",
        "clean/09F/sa1Raw.npy",
        "lips/09F/si1373.mat",
        "noisy/LR/10/volunteers/56M/straightcam/sa1.wav",
    ]
    assert all(s["reason"].count("\n") == 0 for s in skipped)
    assert "20 frames at 30 fps" in next(s["reason"] for s in skipped if s["file"].endswith(".mat"))
    ids = {r["id"] for r in read_manifest(path)}
    assert "01M_sa1" not in ids and "09F_sa1" not in ids and "09F_sa1__Babble_m05" not in ids
    assert "56M_sa1__LR_p10" not in ids and "56M_sa1__LR_m05" in ids and "01M_si1373" in ids
    # unchanged copy: nothing to do, the same list
    assert index_ntcd_timit(tmp_path / "NTCD", tmp_path / "out", progress=False).skipped == skipped


def test_empty_root(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="no clean wavs"):
        prepare_ntcd_timit(tmp_path / "empty", tmp_path / "out2", progress=False)
