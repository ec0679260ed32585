"""Front-end settings, stored in every checkpoint so enhancement uses exactly the training features."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureConfig:
    """STFT and video-rate settings.

    Defaults follow the paper: 16 kHz, 1024-sample sine window, 1024-point FFT (513 bins) and a hop of
    533 samples (about 30 STFT frames per second, one per 30 fps video frame).
    """

    sample_rate: int = 16000
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 533
    window: str = "sine"
    video_fps: float = 30.0
    lip_size: int = 67

    def __post_init__(self) -> None:
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length ({self.win_length}) must be <= n_fft ({self.n_fft})")
        if not 0 < self.hop_length <= self.win_length:
            raise ValueError(f"hop_length must be in (0, win_length]; got {self.hop_length}")
        if self.window not in ("sine", "hann"):
            raise ValueError(f"window must be 'sine' or 'hann'; got {self.window!r}")

    @property
    def n_freq(self) -> int:
        """Number of frequency bins F = n_fft // 2 + 1 (513 by default)."""
        return self.n_fft // 2 + 1

    @property
    def frame_rate(self) -> float:
        """STFT frames per second."""
        return self.sample_rate / self.hop_length

    def n_frames(self, n_samples: int) -> int:
        """Number of STFT frames for a signal of ``n_samples`` samples (centred frames)."""
        return 1 + n_samples // self.hop_length

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown feature settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)
