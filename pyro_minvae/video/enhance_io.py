"""Video files in ``pyro-minvae enhance``: the input reader and the output writer registered with
:mod:`pyro_minvae.enhancement` for the container suffixes (``.mp4``, ``.mkv``, ``.mov``, ...).

- input ``talk.mp4``: the audio track is the noisy waveform, the mouth found in the frames is the lips stream
  (:func:`~pyro_minvae.video.reader.read_video`); lip/landmark files given explicitly win over the frames;
- output ``x.mp4`` (``.mkv``, ``.mov``, ``.m4v``, ``.webm``): a copy of the input video with the enhanced audio
  as its audio track, the video stream copied, not re-encoded; ``x.wav``: only the audio.
"""

from __future__ import annotations

from pathlib import Path
from typing import Collection, Mapping, Optional

import numpy as np

from ..enhancement.file import OUTPUT_WRITERS
from ..enhancement.inputs import INPUT_READERS, EnhanceInput, Stream, read_audio_input
from ..errors import UserInputError
from ..features import FeatureConfig
from ..features.video import check_fps
from .container import AUDIO_CODECS, VIDEO_SUFFIXES, mux_audio
from .reader import VideoOptions, read_video


def read_video_input(
    noisy: str | Path,
    cfg: FeatureConfig,
    *,
    streams: Mapping[str, Optional[str | Path]] = {},
    fps: float | None = None,
    wanted: Collection[str] | None = None,
    video: VideoOptions = VideoOptions(),
) -> EnhanceInput:
    """The :class:`~pyro_minvae.enhancement.inputs.EnhanceInput` of a video file (``fps``: overrides the
    container's frame rate; ``video``: crop options)."""
    if any(v is not None for v in streams.values()):
        return read_audio_input(noisy, cfg, streams=streams, fps=fps, wanted=wanted)
    wave, sr, visual, details = read_video(noisy, cfg, wanted=wanted, options=video)
    rate = check_fps(fps, f"{noisy}: --fps") if fps is not None else details.video.fps
    out = {name: Stream(arr, rate, str(noisy)) for name, arr in visual.items()}
    return EnhanceInput(wave, sr, out, str(noisy), (Path(noisy),))


def write_video_output(path: Path, wave: np.ndarray, sample_rate: int, inp: EnhanceInput | None = None) -> None:
    """A copy of the input's video with ``wave`` as its audio track (see :func:`~pyro_minvae.video.container.
    mux_audio`)."""
    sources = [Path(p) for p in (inp.paths if inp is not None else ()) if Path(p).suffix.lower() in VIDEO_SUFFIXES]
    if not sources:
        raise UserInputError(
            f"{path}: a video output needs a video input (talk.mp4, or --video face.mp4); name "
            "the output .wav for the audio alone"
        )
    mux_audio(sources[0], wave, sample_rate, path)


for _suffix in VIDEO_SUFFIXES:
    if _suffix not in INPUT_READERS:
        INPUT_READERS.register(_suffix, read_video_input)
for _suffix in AUDIO_CODECS:
    if _suffix not in OUTPUT_WRITERS:
        OUTPUT_WRITERS.register(_suffix, write_video_output)
