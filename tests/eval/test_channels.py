"""Recording channels (evaluation/channels.py) against their definitions, and scripts/channel_robustness.py on a
tiny corpus (rows per file, method and channel; a rerun resumes without new work)."""

import json

import numpy as np
import pytest
from eval_synth import build_manifest
from helpers_scripts import load_script

from pyro_minvae.evaluation.channels import RECORDING_CHANNELS

SR = 16000


def _tone_gain_db(channel, hz: float) -> float:
    t = np.arange(2 * SR) / SR
    x = np.sin(2 * np.pi * hz * t).astype(np.float32)
    y = channel(x)
    assert y.shape == x.shape and y.dtype == np.float32
    return 20 * np.log10(np.std(y[SR:]) / np.std(x[SR:]))  # the second second: past the filter's start


def test_telephone_band_passes_speech_band_and_stops_outside():
    phone = RECORDING_CHANNELS.build("phone", sample_rate=SR)
    assert abs(_tone_gain_db(phone, 1000.0)) < 0.5
    assert _tone_gain_db(phone, 6000.0) < -40 and _tone_gain_db(phone, 100.0) < -25


@pytest.mark.parametrize("name, slope", [("dull", -3.0), ("bright", 3.0)])
def test_tilts_change_the_level_by_their_slope_per_octave(name, slope):
    ch = RECORDING_CHANNELS.build(name, sample_rate=SR)
    at = {hz: _tone_gain_db(ch, hz) for hz in (125.0, 250.0, 1000.0, 4000.0)}
    assert at[4000.0] - at[1000.0] == pytest.approx(2 * slope, abs=0.3)  # two octaves
    assert at[1000.0] == pytest.approx(0.0, abs=0.3) and at[125.0] == pytest.approx(at[250.0], abs=0.3)


def test_the_room_decays_60_db_in_its_rt60_and_is_the_same_room_every_time():
    room = RECORDING_CHANNELS.build("reverb", sample_rate=SR)
    assert np.array_equal(room.taps, RECORDING_CHANNELS.build("reverb", sample_rate=SR).taps)
    energy = np.cumsum(room.taps[::-1] ** 2)[::-1]  # Schroeder backward integral
    edc_db = 10 * np.log10(energy / energy[0])
    tail = edc_db - edc_db[1]  # from just after the direct path
    t5, t25 = np.argmax(tail < -5) / SR, np.argmax(tail < -25) / SR
    assert 3 * (t25 - t5) == pytest.approx(0.4, rel=0.1)  # T20 extrapolated to 60 dB
    assert np.argmax(np.abs(room.taps)) == 0


def _script():
    return load_script("channel_robustness")


def test_script_writes_a_row_per_file_method_and_channel_and_resumes(tmp_path):
    manifest = build_manifest(tmp_path / "corpus", snrs=(0,), noises=("white",), n_clean=2, with_video=False)
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    manifest.write_text("".join(json.dumps({**r, "split": "valid"}) + "\n" for r in lines))
    out = tmp_path / "out"
    argv = ["--methods", "noisy,spectral-gating", "--channels", "none,phone", "--manifest", str(manifest)]
    argv += ["--variant", "full:band_floor_db=null", "--out"]  # variants apply to checkpoint methods only
    _script().main([*argv, str(out)])
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 2 and {r["channel"] for r in rows} == {"none", "phone"}
    noisy = [r for r in rows if r["base_method"] == "noisy"]
    assert all(r["delta_si_sdr"] == pytest.approx(0.0, abs=1e-6) for r in noisy)  # the input scored as itself
    table = (out / "channels.md").read_text()
    assert "## channel `phone`" in table and "spectral-gating@phone" in table
    _script().main([*argv, str(out)])
    assert len((out / "rows.jsonl").read_text().splitlines()) == len(rows)  # nothing was run twice
