"""Modalities: how one stream of a manifest record becomes frame-aligned model features ``(N, D)``.

A modality is registered in ``MODALITIES`` under its batch key with a loader
``load(record, manifest_path, n_frames, cfg) -> np.ndarray (n_frames, D) float32`` and a feature size
``dim(cfg) -> int`` (``None`` when it depends on the data). Audio is special: it is the observed power spectrum
and is always loaded by :func:`load_audio_power`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..audio_io import load_audio
from ..errors import UserInputError
from ..features import FeatureConfig, power_frames
from ..features.video import align_to_stft, check_duration, landmarks_to_features, lips_to_features
from ..registry import MODALITIES
from .manifest import resolve


@dataclass(frozen=True)
class Modality:
    """A visual (or other) stream: the manifest field holding its file and how to turn it into features."""

    name: str
    field: str
    to_features: Callable[[np.ndarray], np.ndarray]

    def load_array(self, record: dict, manifest_path) -> np.ndarray:
        rel = record.get(self.field)
        if rel is None:
            raise UserInputError(f"record {record.get('id')!r} has no {self.field!r} stream; prepare the corpus with "
                                 f"that stream or drop the {self.name!r} encoder")
        path = resolve(manifest_path, rel)
        return load_array_file(path)

    def load(self, record: dict, manifest_path, n_frames: int, cfg: FeatureConfig, n_samples: int | None = None
             ) -> np.ndarray:
        """Frame-aligned features ``(n_frames, D)`` float32."""
        arr = self.load_array(record, manifest_path)
        fps = float(record.get("fps", cfg.video_fps))
        source = str(resolve(manifest_path, record[self.field]))
        try:
            return self.from_array(arr, n_frames, cfg, fps, n_samples, source=source)
        except UserInputError:
            raise
        except ValueError as exc:  # bad content (shape, NaN, range): name the file
            raise UserInputError(f"{source}: {exc}; re-create this {self.name} array") from None

    def from_array(self, arr: np.ndarray, n_frames: int, cfg: FeatureConfig, fps: float | None = None,
                   n_samples: int | None = None, source: str | None = None) -> np.ndarray:
        """Video-rate array ``(N_v, ...)`` -> frame-aligned features ``(n_frames, D)`` float32.

        With ``n_samples`` the video duration is checked against the audio's (``UserInputError`` naming
        ``source`` when they differ beyond the tolerance).
        """
        fps = float(fps or cfg.video_fps)
        if n_samples is not None:
            check_duration(arr.shape[0], n_samples, cfg, fps, source=source or self.name)
        return self.to_features(align_to_stft(arr, n_frames, cfg, fps))


def load_array_file(path: Path) -> np.ndarray:
    """Load a ``.npy`` array with a one-line error on failure."""
    if not path.exists():
        raise UserInputError(f"{path}: file not found; re-run `pyro-minvae prepare`")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise UserInputError(f"{path}: not a readable .npy array ({type(exc).__name__}); re-create it") from None


def load_audio_power(record: dict, manifest_path, cfg: FeatureConfig, field: str = "audio"
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Waveform ``(T,)`` (peak-normalised as in the paper) and power spectrogram ``(N, F)`` of a record's audio."""
    from ..features.stft import peak_normalise

    wave = load_audio(resolve(manifest_path, record[field]), cfg.sample_rate)
    wave, _ = peak_normalise(wave)
    return wave, power_frames(wave, cfg).numpy()


MODALITIES.register("lips", Modality("lips", "lips", lips_to_features))
MODALITIES.register("landmarks", Modality("landmarks", "landmarks", landmarks_to_features))
