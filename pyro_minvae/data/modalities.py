"""Modalities: how one visual stream (a file, or a manifest record's field) becomes frame-aligned model features.

This is the one path from a stream file to features, shared by ``enhance`` (single file and manifest),
``evaluate`` and the training datasets, so every caller gets the same checks and the same messages:

- :func:`load_array_file` / :meth:`Modality.read_file` read a ``.npy`` array (or, for lips, a mouth-ROI video);
- :func:`record_fps` reads a record's frame rate (``None`` -> the checkpoint's ``video_fps``; 0, NaN, negative or
  Inf are refused, never replaced by a default);
- :meth:`Modality.from_array` checks the array's content (dtype, shape, finiteness, range: ``check``), its duration
  against the audio and aligns it to the STFT frames: ``(N_v, ...)`` -> ``(n_frames, D)`` float32.

A modality is registered in ``MODALITIES`` under its batch key. Audio is special: it is the observed power
spectrum and is always loaded by :func:`load_audio_power`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio_io import load_audio
from ..errors import UserInputError
from ..features import FeatureConfig, power_frames
from ..features.video import (
    align_to_stft,
    check_duration,
    check_fps,
    check_landmarks,
    check_lips,
    landmarks_to_features,
    lip_frames,
    lips_to_features,
)
from ..registry import MODALITIES
from .manifest import resolve

# (path, size) -> (frames (N_v, size, size) uint8, fps or None): a stream stored as a video file rather than .npy
VideoReader = Callable[[Path, int], "tuple[np.ndarray, float | None]"]


@dataclass(frozen=True)
class Modality:
    """A visual (or other) stream: the manifest field holding its file, its content check and its features.

    ``check(arr)`` raises ``ValueError`` (message ending in the fix) for content the model cannot use;
    ``to_features`` maps aligned frames ``(N, ...)`` to ``(N, D)`` float32; ``video_reader`` (optional) reads the
    stream from a video file instead of a ``.npy`` array; ``layout(arr, cfg)`` (optional) brings the other array
    layouts the stream is stored in to frames first ``(N_v, ...)``, before the check.
    """

    name: str
    field: str
    to_features: Callable[[np.ndarray], np.ndarray]
    check: Callable[[np.ndarray], None] = lambda arr: None
    video_reader: VideoReader | None = None
    layout: Callable[[np.ndarray, FeatureConfig], np.ndarray] | None = None

    def read_file(
        self, path: str | Path, cfg: FeatureConfig, missing_hint: str = "check the path"
    ) -> tuple[np.ndarray, float | None]:
        """The raw stream of ``path`` and the frame rate the file itself states (``None`` for ``.npy``)."""
        p = Path(path)
        if p.suffix.lower() == ".npy" or self.video_reader is None:
            return load_array_file(p, missing_hint), None
        if not p.exists():
            raise UserInputError(f"{p}: file not found; {missing_hint}")
        return self.video_reader(p, cfg.lip_size)

    def load_array(self, record: dict, manifest_path) -> np.ndarray:
        rel = record.get(self.field)
        if rel is None:
            raise UserInputError(
                f"record {record.get('id')!r} has no {self.field!r} stream; prepare the corpus with "
                f"that stream or drop the {self.name!r} encoder"
            )
        return load_array_file(resolve(manifest_path, rel), "re-run `pyro-minvae prepare`")

    def load(
        self, record: dict, manifest_path, n_frames: int, cfg: FeatureConfig, n_samples: int | None = None
    ) -> np.ndarray:
        """Frame-aligned features ``(n_frames, D)`` float32 of a manifest record's stream."""
        arr = self.load_array(record, manifest_path)
        source = str(resolve(manifest_path, record[self.field]))
        return self.from_array(arr, n_frames, cfg, record_fps(record, cfg, manifest_path), n_samples, source=source)

    def from_array(
        self,
        arr: np.ndarray,
        n_frames: int,
        cfg: FeatureConfig,
        fps: float | None = None,
        n_samples: int | None = None,
        source: str | None = None,
    ) -> np.ndarray:
        """Video-rate array ``(N_v, ...)`` at ``fps`` (``None``: ``cfg.video_fps``) -> features ``(n_frames, D)``.

        Raises ``UserInputError`` starting with ``source`` for a bad fps, bad content (see ``check``) and, with
        ``n_samples``, a video duration that differs from the audio's beyond the tolerance.
        """
        source = source or self.name
        fps = cfg.video_fps if fps is None else check_fps(fps, source)
        arr = np.asarray(arr)
        if self.layout is not None:
            arr = self.layout(arr, cfg)
        try:
            self.check(arr)
        except ValueError as exc:
            raise UserInputError(f"{source}: {exc}") from None
        if n_samples is not None:
            check_duration(arr.shape[0], n_samples, cfg, fps, source=source)
        try:
            return self.to_features(align_to_stft(arr, n_frames, cfg, fps))
        except UserInputError:
            raise
        except ValueError as exc:
            raise UserInputError(f"{source}: {exc}") from None


def record_fps(record: dict, cfg: FeatureConfig, manifest_path=None) -> float:
    """The frame rate of a record's visual streams: its ``fps`` field, or ``cfg.video_fps`` when absent (null).

    A present but unusable value (0, negative, NaN, Inf, text) is a ``UserInputError`` naming the record.
    """
    fps = record.get("fps")
    if fps is None:
        return float(cfg.video_fps)
    where = (
        f"{manifest_path}: record {record.get('id')!r}" if manifest_path is not None else f"record {record.get('id')!r}"
    )
    return check_fps(fps, f'{where} field "fps"')


def load_array_file(path: str | Path, missing_hint: str = "re-run `pyro-minvae prepare`") -> np.ndarray:
    """Load a ``.npy`` array with a one-line error on failure (``missing_hint``: the fix for a missing file)."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: file not found; {missing_hint}")
    if path.is_dir():
        raise UserInputError(f"{path}: is a folder, not a .npy array; give the array file")
    if not path.is_file():  # a pipe or device: np.load would block forever
        raise UserInputError(f"{path}: not a regular file (a pipe or device); give the array file")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise UserInputError(f"{path}: not a readable .npy array ({type(exc).__name__}); re-create it") from None


def read_lip_video(path: Path, size: int) -> tuple[np.ndarray, float]:
    """A video given as the lips stream -> grayscale mouth ROIs ``(N_v, size, size)`` float32 in [0, 1] and its
    fps: the mouth is found in a face video, an already-cropped mouth video is used as it is
    (:func:`pyro_minvae.video.track_mouth`, ``--crop auto``); no face at all is refused in one line."""
    from ..video import MouthConfig, track_mouth

    track = track_mouth(path, MouthConfig(size=size))
    return track.rois, check_fps(track.fps, str(path))


def load_audio_power(
    record: dict, manifest_path, cfg: FeatureConfig, field: str = "audio"
) -> tuple[np.ndarray, np.ndarray]:
    """Waveform ``(T,)`` (peak-normalised as in the paper) and power spectrogram ``(N, F)`` of a record's audio."""
    from ..features.stft import peak_normalise

    wave = load_audio(resolve(manifest_path, record[field]), cfg.sample_rate)
    wave, _ = peak_normalise(wave)
    return wave, power_frames(wave, cfg).numpy()


def lips_layout(arr: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Flattened or frames-last lip arrays (NTCD-TIMIT's ``(4489, N)``, ...) -> ``(N, S, S)`` (:func:`lip_frames`)."""
    return lip_frames(arr, cfg.lip_size)


MODALITIES.register("lips", Modality("lips", "lips", lips_to_features, check_lips, read_lip_video, layout=lips_layout))
MODALITIES.register("landmarks", Modality("landmarks", "landmarks", landmarks_to_features, check_landmarks))
