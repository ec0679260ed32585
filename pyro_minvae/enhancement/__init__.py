"""File-level enhancement: the library behind ``pyro-minvae enhance`` (single file and manifest records).

- :class:`Enhancer` (:mod:`.enhancer`): ``Enhancer.from_checkpoint(path, device=..., method=..., **options)`` then
  ``.enhance_file(noisy, output, video=None)``, ``.enhance_batch(items)``, ``.enhance_waveform(wave, sr, visual)``;
- :func:`enhance_file`, :func:`enhance_record`, :func:`enhance_input`, :func:`resolve_output` (:mod:`.file`);
- :func:`read_input`, :func:`record_input`, ``INPUT_READERS`` (:mod:`.inputs`): noisy audio + raw visual streams;
- :func:`visual_features` (:mod:`.visual`): raw streams -> frame-aligned model features, every check;
- :mod:`.options`: device and E-step option checks; :mod:`.progress`: the terminal progress bar.
"""

from .enhancer import Enhancer
from .file import OUTPUT_WRITERS, FileResult, enhance_file, enhance_input, enhance_record, resolve_output
from .inputs import INPUT_READERS, EnhanceInput, Stream, read_input, record_input
from .visual import require_streams, visual_features

__all__ = [
    "INPUT_READERS",
    "OUTPUT_WRITERS",
    "EnhanceInput",
    "Enhancer",
    "FileResult",
    "Stream",
    "enhance_file",
    "enhance_input",
    "enhance_record",
    "read_input",
    "record_input",
    "require_streams",
    "resolve_output",
    "visual_features",
]

from ..video import enhance_io as _video_io  # noqa: E402,F401  (registers the .mp4/.mkv/... readers and writers)
