"""scripts/remix_manifest.py and data.remix / data.derived: a corpus's mixtures re-mixed with other noise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pyro_minvae.data.derived import absolute_paths, staged_corpus
from pyro_minvae.data.manifest import read_manifest
from pyro_minvae.data.mixing import active_speech_power
from pyro_minvae.data.remix import remix_id
from pyro_minvae.errors import UserInputError

from helpers_scripts import load_script
from prepare_fakes import speechlike

SR = 16000


@pytest.fixture(scope="module")
def script():
    return load_script("remix_manifest")


def _corpus(root: Path) -> Path:
    """Two validation mixtures (white noise, -5 and +5 dB) and a test one, relative paths, lips arrays."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    records = []
    for i, (split, snr) in enumerate((("valid", -5.0), ("valid", 5.0), ("test", 0.0))):
        clean = 0.5 * speechlike(1.5, i)
        noisy = clean + rng.standard_normal(clean.size).astype(np.float32) * 0.1
        sf.write(root / f"m{i}.wav", noisy, SR, subtype="PCM_16")
        sf.write(root / f"m{i}.clean.wav", clean, SR, subtype="PCM_16")
        np.save(root / f"lips{i}.npy", np.zeros((45, 67, 67), np.uint8))
        records.append(
            {
                "id": f"spk{i}-0__white_{i}",
                "split": split,
                "kind": "mixture",
                "speaker": f"spk{i}",
                "audio": f"m{i}.wav",
                "clean": f"m{i}.clean.wav",
                "lips": f"lips{i}.npy",
                "noise_type": "white",
                "snr_db": snr,
            }
        )
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root / "manifest.jsonl"


def test_remixed_mixtures_keep_speech_snr_and_lips(script, tmp_path):
    base = _corpus(tmp_path / "base")
    out = script.build(base, ["transient", "pink"], tmp_path / "stress")
    records = read_manifest(out)
    originals = {r["id"]: r for r in read_manifest(base)}
    assert [r["id"] for r in records] == [
        remix_id(rid, t) for rid in ("spk0-0__white_0", "spk1-0__white_1") for t in ("transient", "pink")
    ]
    for r in records:
        orig = originals[r["remixed_from"]]
        assert (r["split"], r["speaker"], r["snr_db"]) == (orig["split"], orig["speaker"], orig["snr_db"])
        assert r["lips"] == str(base.parent / orig["lips"]) and Path(r["lips"]).is_file()
        mixture, _ = sf.read(out.parent / r["audio"], dtype="float64")
        reference, _ = sf.read(out.parent / r["clean"], dtype="float64")
        old_ref, _ = sf.read(base.parent / orig["clean"], dtype="float64")
        # the same speech, at the record's SNR against the new noise (16-bit files: within 0.1 dB)
        assert np.corrcoef(reference, old_ref)[0, 1] > 0.9999
        noise = mixture - reference
        snr = 10 * np.log10(active_speech_power(reference, SR) / np.mean(noise**2))
        assert snr == pytest.approx(r["snr_db"], abs=0.1)
        assert r["noise_type"] in ("transient", "pink") and r["noise_source"] == {"generated": r["noise_type"]}
    # seeded: a second build writes the same samples
    again = script.build(base, ["transient", "pink"], tmp_path / "again")
    for r in records:
        a, _ = sf.read(out.parent / r["audio"])
        b, _ = sf.read(again.parent / r["audio"])
        np.testing.assert_array_equal(a, b)


def test_another_split_and_the_evaluate_command_read_it(script, tmp_path):
    from click.testing import CliRunner

    from pyro_minvae.cli.main import cli

    out = script.build(_corpus(tmp_path / "base"), ["white"], tmp_path / "stress", split="test")
    assert [r["id"] for r in read_manifest(out)] == ["spk2-0__white_2__as_white"]
    res = CliRunner().invoke(
        cli, ["evaluate", "--manifest", str(out), "--methods", "noisy", "--metrics", "si_sdr", "--no-figures",
              "--no-progress", "--out", str(tmp_path / "ev")]
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "1 files x 1 methods" in res.output


@pytest.mark.parametrize(
    "noise,split,message",
    [
        ("babble", "valid", "noise type 'babble' needs a pool of training speech"),
        ("hum", "valid", "noise type 'hum' is not available; choose from white, pink, babble, transient"),
        ("white", "train", "no mixture records in split 'train'"),
    ],
)
def test_refusals_leave_nothing_behind(script, tmp_path, noise, split, message):
    base = _corpus(tmp_path / "base")
    with pytest.raises(UserInputError, match=message):
        script.build(base, [noise], tmp_path / "stress", split=split)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base"]


def test_a_missing_reference_or_ctrl_c_removes_the_staging_folder(script, tmp_path):
    base = _corpus(tmp_path / "base")
    (base.parent / "m1.clean.wav").unlink()
    with pytest.raises(UserInputError, match="m1.clean.wav: file not found"):
        script.build(base, ["white"], tmp_path / "stress")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base"]
    with pytest.raises(KeyboardInterrupt):
        with staged_corpus(tmp_path / "stress") as staging:
            (staging / "half.wav").write_bytes(b"x")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base"]


def test_an_existing_folder_with_files_is_never_replaced(tmp_path):
    out = tmp_path / "stress"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(UserInputError, match="exists and is not an empty folder; give a new --out folder"):
        with staged_corpus(out):
            pass
    assert (out / "mine.txt").read_text() == "keep"
    with staged_corpus(tmp_path / "empty") as staging:  # a new folder: the staging folder becomes it
        (staging / "manifest.jsonl").write_text("")
    assert (tmp_path / "empty" / "manifest.jsonl").exists() and not (tmp_path / ".empty.partial").exists()


def test_every_file_field_is_made_absolute(tmp_path):
    record = {
        "id": "a",
        "split": "test",
        "kind": "mixture",
        "audio": "m/a.wav",
        "clean": "m/a.clean.wav",
        "lips": "lips/a.npy",
        "landmarks": "/abs/a.npy",
        "snr_db": 0,
    }
    (got,) = absolute_paths([record], tmp_path / "manifest.jsonl")
    assert got == {
        **record,
        "audio": str(tmp_path / "m/a.wav"),
        "clean": str(tmp_path / "m/a.clean.wav"),
        "lips": str(tmp_path / "lips/a.npy"),
        "landmarks": "/abs/a.npy",
    }
