"""The one-clip preview figure is written atomically and validates its inputs."""

from __future__ import annotations

import numpy as np
import pytest

from pyro_minvae.visual.align import PhoneSegment
from pyro_minvae.visual.preview import write_preview
from pyro_minvae.visual.render import SpeakerAppearance, render_clip


def test_write_preview(tmp_path):
    phones = [
        PhoneSegment("SIL", 0.0, 0.3),
        PhoneSegment("M", 0.3, 0.4),
        PhoneSegment("AA", 0.4, 0.7),
        PhoneSegment("SIL", 0.7, 1.0),
    ]
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    frames, lm = render_clip(phones, 30, SpeakerAppearance.from_seed(1))
    out = tmp_path / "sub" / "preview.png"
    write_preview(wave, 16000, phones, frames, out, landmarks=lm)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    write_preview(wave, 16000, phones, frames, tmp_path / "no_landmarks.png")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["no_landmarks.png", "preview.png"]
    with pytest.raises(ValueError, match="frames"):
        write_preview(wave, 16000, phones, frames[0], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
