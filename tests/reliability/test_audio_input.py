"""Reliability, audio input: what `pyro-minvae enhance NOISY -o OUT` does with bad, odd and long recordings.

Each case asserts the exit code, the message the user sees and whether the output file exists (never partial).
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from pyro_minvae.audio_io import load_audio
from reliability_helpers import (
    SR,
    assert_no_partial_files,
    assert_user_error,
    enhance_file,
    record,
    speech_like,
    white,
    write_wav,
)


def _enhance(avae, noisy, out, *extra):
    return enhance_file(avae, noisy, out, *extra, verbosity="-v")


def _ok(res, out, n_samples):
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    y, sr = sf.read(out, dtype="float32")
    assert sr == SR and y.ndim == 1
    assert y.shape == (n_samples,), (y.shape, n_samples)
    assert np.isfinite(y).all()
    return y


# ---- unreadable input: one error line, exit 2, no output --------------------------------------------------------
def _bad_files(d):
    good = write_wav(d / "good.wav", speech_like(1.0))
    raw = good.read_bytes()
    (d / "empty.wav").write_bytes(b"")
    write_wav(d / "zero_length.wav", np.zeros(0, np.float32))
    (d / "truncated_header.wav").write_bytes(raw[:20])
    corrupt = bytearray(raw)
    corrupt[:4] = b"JUNK"
    (d / "corrupt_header.wav").write_bytes(bytes(corrupt))
    (d / "text.wav").write_text("this is a text file, not a recording\n" * 50)
    (d / "image.wav").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(2000))
    x = speech_like(1.0)
    x[100] = np.nan
    write_wav(d / "nan.wav", x, subtype="FLOAT")
    x = speech_like(1.0)
    x[200] = np.inf
    write_wav(d / "inf.wav", x, subtype="FLOAT")
    write_wav(d / "short.wav", speech_like(0.1))


BAD = [
    ("empty.wav", "empty.wav: file is empty (0 bytes); re-export the recording"),
    ("zero_length.wav", "zero_length.wav: audio has no samples; re-export the recording"),
    ("truncated_header.wav", "truncated_header.wav: not a readable audio file"),
    ("corrupt_header.wav", "corrupt_header.wav: not a readable audio file"),
    ("text.wav", "text.wav: not a readable audio file"),
    ("image.wav", "image.wav: not a readable audio file"),
    ("nan.wav", "nan.wav: audio contains NaN or Inf samples; re-export it as 16-bit PCM wav"),
    ("inf.wav", "inf.wav: audio contains NaN or Inf samples"),
    ("short.wav", "short.wav: only 0.100 s of audio, at least 0.25 s is needed; give a longer recording"),
    ("missing.wav", "missing.wav: file not found; check the path"),
]


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad_audio")
    _bad_files(d)
    return d


@pytest.mark.parametrize("name,message", BAD, ids=[b[0] for b in BAD])
def test_unreadable_audio_is_one_line_error_and_no_output(avae, bad_dir, tmp_path, name, message):
    out = tmp_path / "out" / "enhanced.wav"
    res = _enhance(avae, bad_dir / name, out)
    assert_user_error(res, message)
    assert not out.exists()
    assert_no_partial_files(tmp_path)


def test_directory_instead_of_file_is_a_usage_error(avae, tmp_path):
    res = _enhance(avae, tmp_path, tmp_path / "o.wav")
    assert res.exit_code == 2 and "is a directory" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o.wav").exists()


def test_existing_output_survives_a_failed_run(avae, bad_dir, tmp_path):
    """A failing run never touches an output that already exists (no data loss), even with --overwrite."""
    out = write_wav(tmp_path / "keep.wav", speech_like(1.0))
    before = out.read_bytes()
    res = _enhance(avae, bad_dir / "text.wav", out, "--overwrite")
    assert_user_error(res, "not a readable audio file")
    record(data_loss=out.read_bytes() != before)
    assert out.read_bytes() == before


# ---- readable but odd input: enhanced, with a message when converted ------------------------------------------
def test_truncated_data_uses_the_samples_present_with_a_warning(avae, tmp_path):
    full = write_wav(tmp_path / "full.wav", speech_like(3.0))
    raw = full.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(raw[: 44 + 2 * SR])  # header + 1 s of 16-bit samples; the header still claims 3 s
    res = _enhance(avae, cut, tmp_path / "o.wav")
    _ok(res, tmp_path / "o.wav", SR)
    assert (
        "cut.wav: file is truncated (its header announces 48000 samples, 16000 are present); using those" in res.output
    )


def test_all_zero_signal_gives_silence_of_the_same_length(avae, tmp_path):
    noisy = write_wav(tmp_path / "zeros.wav", np.zeros(SR, np.float32))
    for method in ("mcem", "fast"):
        out = tmp_path / f"{method}.wav"
        y = _ok(_enhance(avae, noisy, out, "--method", method, "--iterations", "2"), out, SR)
        assert np.all(y == 0.0)


def test_clipped_audio_is_enhanced(avae, tmp_path):
    x = np.clip(8 * speech_like(1.5), -1.0, 1.0)
    assert np.mean(np.abs(x) == 1.0) > 0.1  # 10 % of the samples sit at full scale
    noisy = write_wav(tmp_path / "clipped.wav", x)
    _ok(_enhance(avae, noisy, tmp_path / "o.wav"), tmp_path / "o.wav", x.size)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_other_sample_rates_are_resampled_with_a_message(avae, tmp_path, rate):
    noisy = write_wav(tmp_path / f"in{rate}.wav", speech_like(1.2, sr=rate), sr=rate)
    res = _enhance(avae, noisy, tmp_path / "o.wav")
    n = round(1.2 * SR)
    y = _ok(res, tmp_path / "o.wav", len(load_audio(noisy)))
    assert abs(y.size - n) <= 1
    assert f"in{rate}.wav: resampled from {rate} Hz to 16000 Hz" in res.output


@pytest.mark.parametrize("channels", [2, 6])
def test_multichannel_is_downmixed_with_a_message(avae, tmp_path, channels):
    x = np.stack([speech_like(1.0, seed=c) for c in range(channels)], axis=1)
    noisy = write_wav(tmp_path / "multi.wav", x)
    res = _enhance(avae, noisy, tmp_path / "o.wav")
    _ok(res, tmp_path / "o.wav", SR)
    assert f"multi.wav: {channels} channels, downmixed to mono" in res.output


@pytest.mark.parametrize("subtype", ["PCM_24", "FLOAT", "DOUBLE", "PCM_32", "PCM_U8"])
def test_other_sample_formats_give_the_same_result(avae, tmp_path, subtype):
    x = speech_like(1.0)
    other = write_wav(tmp_path / "other.wav", x, subtype=subtype)
    # the reference: the same samples as float. An 8-bit file holds other samples (its quantisation noise is -27 dB
    # here), so its reference is what it decodes to; the others decode to x within their resolution
    same = sf.read(other, dtype="float32")[0] if subtype == "PCM_U8" else x
    ref = write_wav(tmp_path / "ref.wav", same, subtype="FLOAT")
    y_ref = _ok(_enhance(avae, ref, tmp_path / "ref_out.wav"), tmp_path / "ref_out.wav", SR)
    y = _ok(_enhance(avae, other, tmp_path / "out.wav"), tmp_path / "out.wav", SR)
    np.testing.assert_allclose(y, y_ref, atol=1e-3)


def test_flac_input(avae, tmp_path):
    noisy = tmp_path / "in.flac"
    sf.write(noisy, speech_like(1.0), SR, format="FLAC")
    _ok(_enhance(avae, noisy, tmp_path / "o.wav"), tmp_path / "o.wav", SR)


def test_long_recording_is_chunked_with_exact_output_length(avae, tmp_path):
    """Three minutes (six 30-s chunks), one MCEM iteration: exactly as many samples out as in."""
    x = white(180.3, seed=3, scale=0.05) + np.tile(speech_like(1.0), 181)[: int(180.3 * SR)]
    noisy = write_wav(tmp_path / "long.wav", x)
    out = tmp_path / "long_out.wav"
    res = _enhance(avae, noisy, out, "--method", "mcem", "--iterations", "1")
    y = _ok(res, out, x.size)
    assert "long_out.wav: 180.3 s of audio enhanced" in res.output
    assert np.abs(y).max() > 0
    assert_no_partial_files(tmp_path)


def test_writing_over_range_audio_says_it_clips(tmp_path, caplog):
    import logging

    from pyro_minvae.audio_io import write_audio

    wave = np.array([0.0, 0.5, 1.5, -2.0, 0.25], dtype=np.float32)
    with caplog.at_level(logging.WARNING, logger="pyro_minvae"):
        write_audio(tmp_path / "x.wav", wave)
    assert "2 sample(s) beyond [-1, 1] (peak 2.00) were clipped" in caplog.text
    back, _ = sf.read(tmp_path / "x.wav")
    assert back.max() <= 1.0 and back.min() >= -1.0
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pyro_minvae"):
        write_audio(tmp_path / "y.wav", wave / 4)
    assert caplog.text == ""
