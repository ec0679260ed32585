"""File-level enhancement: inputs read and checked, the waveform enhanced, the output written atomically.

::

    from pyro_minvae.enhancement.file import enhance_file
    written = enhance_file(model, cfg, "noisy.wav", "out.wav", streams={"lips": "lips.npy"}, method="fast")

- :func:`resolve_output`: where the output goes (``out/`` or an existing folder -> ``out/<noisy stem>.wav``) and
  whether it may be written: never onto one of the inputs (``os.path.samefile``: also through a symlink or
  another path), never over an existing file without ``overwrite``, only formats a writer exists for.
- :func:`enhance_input`: an :class:`~pyro_minvae.enhancement.inputs.EnhanceInput` -> ``EnhanceResult`` (visual
  features through :func:`~pyro_minvae.enhancement.visual.visual_features`, then
  :func:`pyro_minvae.infer.enhance.enhance_waveform`; NaN/Inf output becomes a one-line ``UserInputError``).
- :func:`enhance_file` (one noisy file) and :func:`enhance_record` (one manifest record, as ``enhance --manifest``
  does) put them together.

Writers are pluggable by the output's suffix (``OUTPUT_WRITERS``): ``writer(path, wave (T,) float32,
sample_rate, inp)`` writes ``path`` atomically (``inp`` is the input, e.g. to copy its video stream).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ..audio_io import write_audio
from ..errors import UserInputError
from ..features import FeatureConfig
from ..infer.ensemble import members
from ..registry import Registry
from .inputs import EnhanceInput, read_input, record_input
from .options import estep_config
from .progress import make_progress
from .visual import visual_features

OUTPUT_WRITERS: Registry = Registry("output writer")  # lower-case suffix of the output (".wav") -> writer


@OUTPUT_WRITERS.register(".wav")
def write_wav(path: Path, wave: np.ndarray, sample_rate: int, inp: EnhanceInput | None = None) -> None:
    """16-bit PCM mono wav, written atomically (:func:`pyro_minvae.audio_io.write_audio`)."""
    write_audio(path, wave, sample_rate)


class FileResult(NamedTuple):
    """``output``: the file written; ``result``: the :class:`~pyro_minvae.infer.enhance.EnhanceResult`."""

    output: Path
    result: object


def resolve_output(
    output: str | os.PathLike, noisy: str | os.PathLike, inputs: Iterable = (), overwrite: bool = False
) -> Path:
    """The file to write for ``noisy`` given ``-o output``; ``UserInputError`` when it must not be written.

    ``output`` ending in a path separator, or naming an existing folder, means ``output/<noisy stem>.wav``. Refused:
    an output that is one of ``inputs`` (the noisy file, the lip/landmark files, the checkpoint; compared with
    ``os.path.samefile``, so also through a symlink or a different spelling), even with ``overwrite``; an existing
    file without ``overwrite``; a suffix no writer is registered for.
    """
    text = os.fspath(output)
    if not text.strip():
        raise UserInputError("output: the name is empty; give a file (e.g. enhanced.wav) or a folder ending in /")
    out = Path(text)
    if text.endswith(("/", os.sep)) or out.is_dir():
        out = out / f"{Path(noisy).stem}.wav"
    suffix = out.suffix.lower()
    if suffix not in OUTPUT_WRITERS:
        kinds = ", ".join(OUTPUT_WRITERS.names())
        what = f"{suffix!r} files" if suffix else "a file without a suffix"
        raise UserInputError(
            f"{out}: cannot write {what}; end the output's name with one of {kinds} (e.g. -o "
            "enhanced.wav) or give a folder ending in /"
        )
    if out.is_dir():
        raise UserInputError(f"{out}: is a folder; give a file name for the output")
    if out.is_symlink() and not out.exists() and not overwrite:  # a dangling link is something the user made
        raise UserInputError(
            f"{out}: is a symbolic link (to {os.readlink(out)}, which does not exist); pass "
            "--overwrite to replace the link, or choose another output file"
        )
    if out.exists():
        for src in inputs:
            if src is not None and Path(src).exists() and os.path.samefile(out, src):
                raise UserInputError(
                    f"{out}: is the input {src}; writing there would replace it; choose another output file"
                )
        if not overwrite:
            raise UserInputError(f"{out}: exists; pass --overwrite to replace it, or choose another output file")
    return out


def enhance_input(
    model,
    cfg: FeatureConfig,
    inp: EnhanceInput,
    *,
    method: str = "mcem",
    seed: int = 0,
    device="cpu",
    progress=None,
    checkpoint: str | None = None,
    missing_fix: str = "give it with --video/--landmarks",
    **options,
):
    """Enhance ``inp`` with ``model``: ``EnhanceResult`` (``waveform`` ``(T,)`` at ``cfg.sample_rate``).

    ``progress``: an :class:`~pyro_minvae.infer.enhance.EnhanceProgress`, ``True``/``False`` to force a terminal
    bar on/off, ``None`` (a bar when stderr is a terminal and INFO is shown). ``options`` go to the E-step.
    """
    from ..infer import enhance as _enh

    visual = visual_features(model, cfg, inp.streams, inp.wave.shape[0], missing_fix)
    available = {"audio", *visual}  # the noisy audio is always there, visual streams may not be
    init = options.get("init")
    if init is not None and init not in available:
        raise UserInputError(
            f"--init {init}: there is no {init} stream for {Path(inp.source).name}; {missing_fix}, "
            "or initialise from another encoder (--init audio)"
        )
    for member in members(model):  # an ensemble: every model must find an encoder's stream
        encoders = list(member.guide_net.modalities)
        if not available.intersection(encoders):  # e.g. a V-VAE (lips encoder only) given no lips
            raise UserInputError(
                f"this checkpoint's encoder reads {', '.join(encoders)}, which "
                f"{Path(inp.source).name} does not come with; {missing_fix}"
            )
    if progress is None or isinstance(progress, bool):
        config = estep_config(method, options)
        runs = config.restarts * len(members(model))
        progress = make_progress(progress, config.iterations * runs)  # EM iterations of every run
    try:
        return _enh.enhance_waveform(
            model,
            cfg,
            inp.wave,
            {k: torch.from_numpy(v) for k, v in visual.items()},
            method=method,
            seed=seed,
            device=device,
            progress=progress,
            **options,
        )
    except _enh.NonFiniteOutputError:
        raise UserInputError(
            f"{checkpoint or 'the checkpoint'}: the model produced NaN or Inf on "
            f"{Path(inp.source).name} (diverged or damaged weights); re-train or use another "
            "checkpoint"
        ) from None


def enhance_file(
    model,
    cfg: FeatureConfig,
    noisy: str | os.PathLike,
    output: str | os.PathLike,
    *,
    streams: Mapping[str, str | os.PathLike | None] | None = None,
    fps: float | None = None,
    overwrite: bool = False,
    checkpoint: str | None = None,
    method: str = "mcem",
    seed: int = 0,
    device="cpu",
    progress=None,
    reader_options: Mapping | None = None,
    **options,
) -> FileResult:
    """Enhance the file ``noisy`` into ``output`` (see :func:`resolve_output`); returns the file written.

    ``streams``: ``{"lips": "lips.npy" | "mouth.mp4", "landmarks": "pts.npy"}`` (``None`` values are skipped);
    ``fps``: their frame rate (default: the video's own, else ``cfg.video_fps``); ``reader_options``: see
    :func:`~pyro_minvae.enhancement.inputs.read_input`. Everything is read and checked before the E-step starts;
    nothing is written on failure.
    """
    streams = dict(streams or {})
    out = resolve_output(output, noisy, [noisy, checkpoint, *streams.values()], overwrite)
    inp = read_input(noisy, cfg, streams=streams, fps=fps, wanted=model.modalities, reader_options=reader_options)
    resolve_output(out, noisy, inp.paths, overwrite)  # files a plugged-in reader opened itself
    res = enhance_input(
        model, cfg, inp, method=method, seed=seed, device=device, progress=progress, checkpoint=checkpoint, **options
    )
    OUTPUT_WRITERS.get(out.suffix.lower())(out, res.waveform.numpy(), cfg.sample_rate, inp)
    return FileResult(out, res)


def enhance_record(
    model,
    cfg: FeatureConfig,
    record: dict,
    manifest: str | os.PathLike,
    out_path: str | os.PathLike | None = None,
    *,
    checkpoint: str | None = None,
    method: str = "mcem",
    seed: int = 0,
    device="cpu",
    progress=False,
    **options,
):
    """Enhance a manifest record's noisy audio with its own streams (its ``fps``); write ``out_path`` (wav,
    atomically) when given. Returns the ``EnhanceResult``. Bad files raise ``UserInputError`` naming them."""
    inp = record_input(record, manifest, cfg, wanted=model.modalities)
    res = enhance_input(
        model,
        cfg,
        inp,
        method=method,
        seed=seed,
        device=device,
        progress=progress,
        checkpoint=checkpoint,
        missing_fix=f"record {record.get('id')!r} in {manifest} lacks it",
        **options,
    )
    if out_path is not None:
        write_audio(out_path, res.waveform.numpy(), cfg.sample_rate)
    return res
