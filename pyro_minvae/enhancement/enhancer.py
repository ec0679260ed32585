"""``Enhancer``: a trained checkpoint plus enhancement settings, applied to files, lists of files or arrays.

::

    from pyro_minvae.enhancement import Enhancer

    enh = Enhancer.from_checkpoint("runs/minvae/best.pt", method="fast", device="cpu")
    enh = Enhancer.from_pretrained("minvae")                                 # the shipped MIN-VAE
    enh = Enhancer.from_checkpoint([pretrained_path(n) for n in ("avae", "minvae", "avcvae")], method="fast")
    enh.enhance_file("noisy.wav", "clean.wav", video="lips.npy").output     # -> Path("clean.wav")
    enh.enhance_batch([("a.wav", "out/"), ("b.wav", "out/", "b_lips.npy")])  # -> [FileResult, FileResult]
    res = enh.enhance_waveform(noisy, 16000, visual={"lips": lips}, fps=30)  # noisy (T,), lips (N_v, 67, 67)
    res.waveform                                                             # (T',) float32 torch, model's rate

Settings are checked once, when the enhancer is made (device, E-step, its options against the checkpoint);
every call then checks its inputs and raises :class:`~pyro_minvae.errors.UserInputError` (one line naming the
file and the fix) for bad ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from ..errors import UserInputError
from ..features import FeatureConfig
from .file import FileResult, enhance_file, enhance_input
from .inputs import EnhanceInput, Stream
from .options import check_device, check_model_options, check_seed


class Enhancer:
    """Enhance with ``model`` (its feature settings ``cfg``) by E-step ``method`` on ``device``.

    ``options`` go to the E-step (e.g. ``iterations=30``, ``kernel="frame-mh-jump"``, ``init="audio"``,
    ``loop="minvae"``); ``seed`` is the default seed of every call; ``progress``: ``None`` shows a terminal bar
    when stderr is a terminal and INFO logging is on, ``True``/``False`` force it.
    """

    def __init__(
        self,
        model,
        cfg: FeatureConfig,
        *,
        method: str = "mcem",
        seed: int = 0,
        device="cpu",
        checkpoint: str | os.PathLike | None = None,
        progress: bool | None = None,
        **options,
    ):
        self.device = check_device(device)
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        check_model_options(model, method, options)
        self.model = model.to(self.device)
        self.cfg = cfg
        self.method = method
        self.seed = check_seed(seed)
        self.progress = progress
        self.options = dict(options)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike | Sequence[str | os.PathLike],
        *,
        device="cpu",
        method: str = "mcem",
        seed: int = 0,
        progress: bool | None = None,
        **options,
    ) -> Enhancer:
        """Load a checkpoint (``UserInputError`` for a missing or damaged one) and check the settings. ``path``:
        one checkpoint, or a list of several that enhance together (an ensemble: every model runs the E-step and
        their Wiener gains are pooled, :mod:`pyro_minvae.infer.ensemble`)."""
        from ..checkpoint import checkpoint_name, load_models

        dev = check_device(device)
        model, cfg, _ = load_models(path, dev)
        name = checkpoint_name(path)
        return cls(model, cfg, method=method, seed=seed, device=dev, checkpoint=name, progress=progress, **options)

    @classmethod
    def from_pretrained(cls, name: str = "minvae", **kwargs) -> Enhancer:
        """A model that ships with the package: ``"minvae"`` (default), ``"avae"`` or ``"avcvae"`` (see
        :mod:`pyro_minvae.pretrained` and the model cards next to the files); ``kwargs`` as for
        :meth:`from_checkpoint`."""
        from ..pretrained import pretrained_path

        return cls.from_checkpoint(pretrained_path(name), **kwargs)

    @property
    def sample_rate(self) -> int:
        """The rate (Hz) the model works at; outputs are written at this rate."""
        return self.cfg.sample_rate

    def _run(self, **kwargs) -> dict:
        return dict(
            method=self.method,
            device=self.device,
            checkpoint=self.checkpoint,
            progress=self.progress,
            **self.options,
            **kwargs,
        )

    def enhance_file(
        self,
        noisy: str | os.PathLike,
        output: str | os.PathLike,
        video: str | os.PathLike | None = None,
        landmarks: str | os.PathLike | None = None,
        *,
        fps: float | None = None,
        overwrite: bool = False,
        seed: int | None = None,
        reader_options: Mapping | None = None,
    ) -> FileResult:
        """Enhance ``noisy`` into ``output`` (a ``.wav``, or a folder: ``output/<stem>.wav``); returns
        ``FileResult(output=Path written, result=EnhanceResult)``.

        ``video``: lip ROIs (``.npy`` ``(N, H, W)`` or a mouth-ROI video); ``landmarks``: ``.npy`` ``(N, P, 2)``;
        ``fps``: their frame rate. The inputs are never overwritten, an existing output only with ``overwrite``.
        ``noisy`` may be a video (``talk.mp4``: audio track + mouth found in the frames) and ``output`` a video
        (``.mp4``/``.mkv``/...: the input's video with the enhanced audio); ``reader_options``: see
        :func:`~pyro_minvae.enhancement.inputs.read_input`.
        """
        return enhance_file(
            self.model,
            self.cfg,
            noisy,
            output,
            streams={"lips": video, "landmarks": landmarks},
            fps=fps,
            overwrite=overwrite,
            reader_options=reader_options,
            **self._run(seed=self.seed if seed is None else check_seed(seed)),
        )

    def enhance_batch(self, items: Iterable, *, overwrite: bool = False, skip_errors: bool = False) -> list:
        """Enhance ``(noisy, output)`` / ``(noisy, output, video)`` tuples or ``{"noisy", "output", "video",
        "landmarks", "fps"}`` dicts in order, each with this enhancer's seed.

        Returns one entry per item: its ``FileResult``, or with ``skip_errors`` the ``UserInputError`` of an item
        that could not be enhanced (the others go on); without it the first error is raised.
        """
        out: list = []
        for item in items:
            kwargs = _batch_item(item)
            try:
                out.append(self.enhance_file(overwrite=overwrite, **kwargs))
            except UserInputError as exc:
                if not skip_errors:
                    raise
                out.append(exc)
        return out

    def enhance_waveform(
        self,
        wave,
        sample_rate: int,
        visual: Mapping[str, np.ndarray] | None = None,
        *,
        fps: float | None = None,
        seed: int | None = None,
    ):
        """Enhance ``wave`` ``(T,)`` (numpy or torch, mono) recorded at ``sample_rate`` Hz.

        ``visual``: video-rate streams ``{"lips": (N_v, H, W), "landmarks": (N_v, P, 2)}`` at ``fps`` (default: a
        ``"fps"`` entry of ``visual``, else ``cfg.video_fps``); they are checked and aligned like files. Returns
        the ``EnhanceResult``; its ``waveform`` is ``(T',)`` float32 at :attr:`sample_rate` (``T' = T`` when the
        rates agree).
        """
        from ..audio_io import resample

        x = np.asarray(wave.detach().cpu() if torch.is_tensor(wave) else wave)
        if x.ndim != 1 or x.size == 0 or x.dtype.kind not in "uif":
            raise UserInputError(
                f"waveform: expected a non-empty mono (T,) real array; got shape {x.shape}, dtype {x.dtype}"
            )
        x = x.astype(np.float32)
        if not np.isfinite(x).all():
            raise UserInputError("waveform: contains NaN or Inf samples")
        if int(sample_rate) <= 0:
            raise UserInputError(f"sample_rate {sample_rate}: must be a positive number of Hz")
        x = resample(x, int(sample_rate), self.cfg.sample_rate)
        visual = dict(visual or {})
        given = visual.pop("fps", None)  # evaluate's video dicts carry their frame rate
        rate = fps if fps is not None else given
        streams = {name: Stream(np.asarray(arr), rate, f"visual[{name!r}]") for name, arr in visual.items()}
        inp = EnhanceInput(x, self.cfg.sample_rate, streams, "waveform")
        return enhance_input(
            self.model,
            self.cfg,
            inp,
            missing_fix="pass it in visual={...}",
            **self._run(seed=self.seed if seed is None else check_seed(seed)),
        )


def _batch_item(item) -> dict:
    if isinstance(item, Mapping):
        unknown = set(item) - {"noisy", "output", "video", "landmarks", "fps"}
        if unknown or "noisy" not in item or "output" not in item:
            raise UserInputError(
                f"batch item {dict(item)!r}: needs 'noisy' and 'output' (optional 'video', 'landmarks', 'fps')"
            )
        return dict(item)
    if isinstance(item, (str, os.PathLike)) or not isinstance(item, Sequence) or not 2 <= len(item) <= 3:
        raise UserInputError(f"batch item {item!r}: expected (noisy, output) or (noisy, output, video)")
    return dict(zip(("noisy", "output", "video"), item))


__all__ = ["Enhancer"]
