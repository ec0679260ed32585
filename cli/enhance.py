"""``pyro-minvae enhance``: one noisy file, or a whole manifest split, enhanced with a trained checkpoint.

Single file::

    pyro-minvae enhance --checkpoint CKPT noisy.wav [--video lips.npy|lips.mp4] [--landmarks pts.npy] -o out.wav

Manifest mode (mixture records of one split, one ``<id>.wav`` per record; resumable: existing outputs are
skipped; ``--shard k/N`` takes every N-th record starting at the k-th, 1-based; ``--jobs`` worker processes).
A bad record (unreadable audio, mismatched lips, ...) does not stop the batch: the others are finished, the bad
ones are listed with their reasons and the exit status is 1::

    pyro-minvae enhance --checkpoint CKPT --manifest M.jsonl --split test --out-dir DIR [--shard 1/4]
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import click
import numpy as np

from pyro_minvae.errors import UserInputError

log = logging.getLogger("pyro_minvae")

METHODS = ("mcem", "fast", "vem")


# ---- inputs --------------------------------------------------------------------------------------------------------
def _load_model(checkpoint: str, device: str):
    from pyro_minvae.checkpoint import load_model

    return load_model(checkpoint, device)


def read_lip_video(path: Path, size: int) -> tuple[np.ndarray, float]:
    """A mouth-ROI video (already cropped to the mouth) -> grayscale ``(N_v, size, size)`` uint8 and its fps."""
    try:
        import av

        with av.open(str(path)) as container:
            stream = next(s for s in container.streams if s.type == "video")
            fps = float(stream.average_rate) if stream.average_rate else 30.0
            frames = [f.reformat(width=size, height=size, format="gray").to_ndarray() for f in container.decode(stream)]
    except StopIteration:
        raise UserInputError(f"{path}: no video stream; give a mouth-ROI video or a .npy array of lip frames") from None
    except Exception as exc:
        raise UserInputError(f"{path}: not a readable video ({type(exc).__name__}); convert it to mp4 or give a "
                             ".npy array (N, 67, 67)") from None
    if not frames:
        raise UserInputError(f"{path}: the video has no frames; give a mouth-ROI video")
    return np.stack(frames).astype(np.uint8), fps


def _load_npy(path: Path) -> np.ndarray:
    from pyro_minvae.data.modalities import load_array_file

    return load_array_file(path)


def visual_features_from_files(model, cfg, n_samples: int, video: str | None, landmarks: str | None,
                               fps: float | None) -> dict:
    """Frame-aligned features ``{name: (N, D)}`` for the streams the model reads, from user-given files."""
    from pyro_minvae.data.modalities import MODALITIES

    n = cfg.n_frames(n_samples)
    wanted = set(model.modalities) - {"audio"}
    out = {}
    if video is not None and "lips" in wanted:
        p = Path(video)
        if p.suffix.lower() == ".npy":
            arr, vfps = _load_npy(p), fps or cfg.video_fps
        else:
            if not p.exists():
                raise UserInputError(f"{p}: file not found; check the --video path")
            arr, vfps = read_lip_video(p, cfg.lip_size)
            vfps = fps or vfps
        if arr.ndim != 3:
            raise UserInputError(f"{p}: lip frames must have shape (N, H, W); got {arr.shape}; give grayscale ROIs")
        _check_lips(arr, cfg, p)
        out["lips"] = MODALITIES.get("lips").from_array(arr, n, cfg, vfps, n_samples, source=str(p))
    elif video is not None:
        log.info("the model does not read lip frames; --video ignored")
    if landmarks is not None and "landmarks" in wanted:
        p = Path(landmarks)
        arr = _load_npy(p)
        if arr.ndim != 3 or arr.shape[-1] != 2:
            raise UserInputError(f"{p}: landmarks must have shape (N, P, 2); got {arr.shape}")
        out["landmarks"] = MODALITIES.get("landmarks").from_array(arr, n, cfg, fps, n_samples, source=str(p))
    elif landmarks is not None:
        log.info("the model does not read landmarks; --landmarks ignored")
    _require_visual(model, out, "give it with --video/--landmarks")
    return out


def _check_lips(arr: np.ndarray, cfg, path: Path) -> None:
    """One-line errors for lip arrays the model cannot use (size, NaN/Inf, float range)."""
    if arr.shape[1:] != (cfg.lip_size, cfg.lip_size):
        raise UserInputError(f"{path}: lip frames are {arr.shape[1]}x{arr.shape[2]} pixels; this checkpoint expects "
                             f"{cfg.lip_size}x{cfg.lip_size} mouth ROIs")
    if arr.dtype != np.uint8:
        if not np.isfinite(arr).all():
            raise UserInputError(f"{path}: lip ROIs contain NaN or Inf; re-extract the mouth ROIs")
        top = float(arr.max()) if arr.size else 0.0
        if top > 1.0 + 1e-6 or (arr.size and float(arr.min()) < -1e-6):
            raise UserInputError(f"{path}: float lip ROIs must lie in [0, 1]; got values up to {top:g} (store uint8 "
                                 "0..255 or divide by 255)")


def _enhance(model, cfg, wave, visual, checkpoint, noisy, **kwargs):
    """``enhance_waveform``; a diverged or damaged model (NaN/Inf audio) becomes a one-line user error."""
    from pyro_minvae.infer import enhance as enh

    try:
        return enh.enhance_waveform(model, cfg, wave, visual, **kwargs)
    except enh.NonFiniteOutputError:
        raise UserInputError(f"{checkpoint}: the model produced NaN or Inf on {Path(noisy).name} (diverged or damaged "
                             "weights); re-train or use another checkpoint") from None


def _require_visual(model, visual: dict, fix: str) -> None:
    """Models with a visual conditioner (AV-CVAE) cannot run without it; MIN-VAE can (audio initialisation)."""
    cond = getattr(model, "conditioner", None)
    if cond is not None and cond.modality not in visual:
        raise UserInputError(f"this {model.spec.get('family', 'model')} checkpoint needs the {cond.modality!r} "
                             f"stream; {fix}")


def visual_features_from_record(model, cfg, record: dict, manifest: str, n_samples: int) -> dict:
    from pyro_minvae.data.modalities import MODALITIES

    out = {}
    for name in model.modalities:
        if name == "audio" or name not in MODALITIES:
            continue
        mod = MODALITIES.get(name)
        if record.get(mod.field) is None:
            continue
        out[name] = mod.load(record, manifest, cfg.n_frames(n_samples), cfg, n_samples)
    _require_visual(model, out, f"record {record.get('id')!r} in {manifest} lacks it")
    return out


def _opts(iterations: int | None, init: str | None = None, kernel: str | None = None,
          loop: str | None = None) -> dict:
    opts = {} if iterations is None else {"iterations": iterations}
    if loop is not None:
        opts["loop"] = loop
    if init is not None:
        opts["init"] = init
    if kernel is not None:
        opts["kernel"] = kernel
    return opts


def _check_kernel(kernel: str | None, method: str) -> None:
    """``--kernel`` names a registered E-step kernel and only applies to the MCMC method."""
    if kernel is None:
        return
    import pyro_minvae.infer  # noqa: F401  (registers the built-in kernels)
    from pyro_minvae.registry import KERNELS

    if method != "mcem":
        raise UserInputError(f"--kernel {kernel}: kernels drive the MCMC E-step; use it with --method mcem")
    try:
        KERNELS.get(kernel)
    except ValueError as exc:
        raise UserInputError(f"--kernel: {exc} (a plugin registers more: pyro-minvae --plugin FILE.py ...)") from None


def _check_init(model, init: str | None) -> None:
    encoders = getattr(model.guide_net, "modalities", ["audio"])
    if init is not None and init not in encoders:
        raise UserInputError(f"--init {init}: this checkpoint's encoders are {', '.join(encoders)}; pick one of them")


def parse_shard(shard: str) -> tuple[int, int]:
    try:
        k, n = (int(v) for v in shard.split("/"))
    except ValueError:
        raise UserInputError(f"--shard {shard!r}: expected k/N with 1 <= k <= N, e.g. 1/4") from None
    if not 1 <= k <= n:
        raise UserInputError(f"--shard {shard!r}: expected k/N with 1 <= k <= N, e.g. 1/4")
    return k, n


# ---- workers -------------------------------------------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(checkpoint: str, device: str, threads: int, level: int) -> None:
    import torch

    torch.set_num_threads(threads)
    logging.getLogger("pyro_minvae").setLevel(level)
    model, cfg, _ = _load_model(checkpoint, device)
    _WORKER.update(model=model, cfg=cfg, device=device, checkpoint=checkpoint)


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, (UserInputError, ValueError)):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _enhance_record_safe(record: dict, manifest: str, out_path: str, method: str, seed: int, opts: dict
                         ) -> tuple[str, str | None]:
    """Enhance one record; a failure (bad file, bad stream) is returned as a one-line reason, not raised."""
    try:
        return _enhance_record(record, manifest, out_path, method, seed, opts), None
    except Exception as exc:  # one bad record must not stop a batch; KeyboardInterrupt still does
        return record["id"], _one_line(exc)


def _enhance_record(record: dict, manifest: str, out_path: str, method: str, seed: int, opts: dict) -> str:
    from pyro_minvae.audio_io import load_audio, write_audio
    from pyro_minvae.data.manifest import resolve

    model, cfg = _WORKER["model"], _WORKER["cfg"]
    wave = load_audio(resolve(manifest, record["audio"]), cfg.sample_rate)
    visual = visual_features_from_record(model, cfg, record, manifest, wave.shape[0])
    res = _enhance(model, cfg, wave, visual, _WORKER["checkpoint"], record["audio"], method=method, seed=seed,
                   device=_WORKER["device"], **opts)
    write_audio(out_path, res.waveform.numpy(), cfg.sample_rate)
    return record["id"]


def _run_manifest(checkpoint, manifest, split, out_dir, method, seed, device, opts, jobs, shard, overwrite,
                  threads=None) -> tuple[int, dict]:
    """Enhance the shard's records that have no output yet. Returns (files written, {id: failure reason})."""
    from tqdm import tqdm

    from pyro_minvae.data.manifest import read_manifest, select

    records = sorted(select(read_manifest(manifest), split=split, kind="mixture"), key=lambda r: r["id"])
    if not records:
        raise UserInputError(f"{manifest}: no mixture records in split {split!r}; choose another --split or "
                             "prepare mixtures")
    k, n = parse_shard(shard)
    records = records[k - 1::n]
    out = Path(out_dir)
    todo = [r for r in records if overwrite or not (out / f"{r['id']}.wav").exists()]
    from pyro_minvae.atomic import remove_stale_temps

    for r in todo:  # temporary files of a run killed mid-write (shards never share a record)
        remove_stale_temps(out / f"{r['id']}.wav")
    log.info("%d record(s) in shard %d/%d, %d to do, %d already enhanced", len(records), k, n, len(todo),
             len(records) - len(todo))
    failed: dict = {}
    if not todo:
        return 0, failed
    jobs = max(1, min(jobs, len(todo)))
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    level = logging.getLogger("pyro_minvae").getEffectiveLevel()
    bar = tqdm(total=len(todo), desc="enhance", unit="file", disable=None)
    try:
        if jobs == 1:
            _init_worker(checkpoint, device, threads, level)
            for r in todo:
                rid, err = _enhance_record_safe(r, manifest, str(out / f"{r['id']}.wav"), method, seed, opts)
                if err is not None:
                    failed[rid] = err
                bar.update(1)
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                     initargs=(checkpoint, device, threads, level)) as pool:
                futures = [pool.submit(_enhance_record_safe, r, manifest, str(out / f"{r['id']}.wav"), method, seed,
                                       opts) for r in todo]
                for f in as_completed(futures):
                    rid, err = f.result()
                    if err is not None:
                        failed[rid] = err
                    bar.update(1)
    finally:
        bar.close()
    return len(todo) - len(failed), failed


# ---- command -------------------------------------------------------------------------------------------------------
@click.command(name="enhance")
@click.argument("noisy", required=False, type=click.Path(dir_okay=False))
@click.option("-c", "--checkpoint", required=True, type=click.Path(dir_okay=False), help="Trained model checkpoint.")
@click.option("--video", type=click.Path(dir_okay=False), help="Lip ROIs: .npy (N, 67, 67) or a mouth-ROI video.")
@click.option("--landmarks", type=click.Path(dir_okay=False), help="Lip landmarks .npy (N, P, 2).")
@click.option("--fps", type=float, default=None, help="Frame rate of --video/--landmarks (default: from the "
              "video file, else the checkpoint's).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output wav (single-file mode).")
@click.option("--manifest", type=click.Path(dir_okay=False), help="Enhance the mixtures of a manifest split.")
@click.option("--split", default="test", show_default=True, help="Manifest split (manifest mode).")
@click.option("--out-dir", type=click.Path(file_okay=False), help="Output folder (manifest mode).")
@click.option("--method", type=click.Choice(METHODS), default="mcem", show_default=True,
              help="mcem: the paper's Monte-Carlo EM; fast (= vem): variational EM.")
@click.option("--iterations", type=int, default=None, help="EM iterations (default: the method's; mcem 30, the "
              "paper 100).")
@click.option("--loop", type=click.Choice(["classic", "minvae"]), default=None,
              help="mcem only: classic (default; MIN-VAE with its mixture prior and re-estimated weights) or "
                   "minvae (MIN-VAE's published variational loop).")
@click.option("--init", "init_from", default=None, help="Encoder that initialises z, e.g. audio or lips (default: "
              "MIN-VAE the visual one, as in the paper; others their only encoder).")
@click.option("--kernel", default=None, help="E-step MCMC kernel by registry name (KERNELS; default frame-mh, "
              "the paper's frame-wise random-walk MH; frame-mh-jump adds jumps between a mixture "
              "prior's components, MIN-VAE).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu or cuda.")
@click.option("--jobs", type=int, default=2, show_default=True, help="Worker processes (manifest mode).")
@click.option("--threads", type=int, default=None, help="torch threads per process (default: cores / jobs in "
              "manifest mode, torch's default otherwise; 1 is fastest on a busy machine).")
@click.option("--shard", default="1/1", show_default=True, help="k/N: this job's share of the records.")
@click.option("--overwrite", is_flag=True, help="Re-enhance records whose output exists.")
def command(noisy, checkpoint, video, landmarks, fps, output, manifest, split, out_dir, method, iterations, loop,
            init_from, kernel, seed, device, jobs, threads, shard, overwrite):
    """Enhance NOISY.wav (or every mixture of a manifest split) with a trained checkpoint."""
    _check_kernel(kernel, method)
    if loop is not None and method != "mcem":
        raise UserInputError(f"--loop applies to --method mcem only, not {method!r}")
    if threads is not None and threads < 1:
        raise UserInputError(f"--threads {threads}: must be >= 1")
    if manifest is not None:
        if noisy is not None or output is not None:
            raise UserInputError("give either NOISY -o OUT or --manifest M --out-dir DIR, not both")
        if out_dir is None:
            raise UserInputError("--manifest needs --out-dir DIR for the enhanced files")
        if jobs < 1:
            raise UserInputError(f"--jobs {jobs}: must be >= 1")
        _check_init(_load_model(checkpoint, "cpu")[0], init_from)  # fail early on a bad checkpoint or --init
        done, failed = _run_manifest(checkpoint, manifest, split, out_dir, method, seed, device,
                                     _opts(iterations, init_from, kernel, loop), jobs, shard, overwrite, threads)
        click.echo(f"enhanced {done} file(s) into {out_dir}")
        if failed:
            click.echo(f"{len(failed)} file(s) failed; nothing was written for them:")
            for rid in sorted(failed):
                click.echo(f"  {rid}: {failed[rid]}")
            click.get_current_context().exit(1)
        return
    if noisy is None or output is None:
        raise UserInputError("missing input: give NOISY.wav -o OUT.wav (or --manifest M --out-dir DIR)")
    import torch

    from pyro_minvae.audio_io import load_audio, write_audio

    if threads is not None:
        torch.set_num_threads(threads)
    model, cfg, _ = _load_model(checkpoint, device)
    _check_init(model, init_from)
    wave = load_audio(noisy, cfg.sample_rate)
    visual = visual_features_from_files(model, cfg, wave.shape[0], video, landmarks, fps)
    res = _enhance(model, cfg, wave, visual, checkpoint, noisy, method=method, seed=seed, device=device,
                   **_opts(iterations, init_from, kernel, loop))
    write_audio(output, res.waveform.numpy(), cfg.sample_rate)
    log.info("%s: %.1f s of audio enhanced in %.1f s (%s, z initialised from the %s encoder)", output,
             wave.shape[0] / cfg.sample_rate, res.seconds, method, res.init)
    click.echo(f"wrote {output}")
