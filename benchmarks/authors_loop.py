"""The authors' two enhancement loops, re-implemented for timing (benchmark-only; not part of the package).

Written from the description in AUTHORS_LOOPS.md (sections 1-6; no published code copied), in the authors'
structure, dtypes and costs, so that ``benchmarks/authors_vs_mcem.py`` can time pyro-minvae's MCEM side by side
with them on the same decoder weights and the same input:

* the decoder runs in torch float32 (``z (M, L) -> exp(log sigma^2) (M, F)``, transposed to ``(F, M)`` in numpy);
  every MH step decodes twice (the proposal, then the whole current state again);
* all EM algebra is numpy float64; the current latents ``Z`` ``(L, N)`` are float32 and updated in place
  (accepted float64 proposals are down-cast);
* random numbers come from one numpy ``RandomState`` seeded once (the authors' ``np.random.seed(0)``), drawn in
  their order: W0 ``(F, K)``, H0 ``(K, N)``, then per MH step ``randn(L, N)`` and ``rand(1, N)``. ``draws=`` may
  inject another source with the same two methods (e.g. :class:`TorchDraws`, the stream pyro-minvae's MCEM
  uses), so both implementations can run on identical random numbers.

Classic MCEM (A-VAE; ``MCEM_algo``, section 4): MH on ``p(x | z, W H, a)`` with the standard normal prior,
``|X|^2`` recomputed in every MH step, the cached current-state variance keeping the gain of the previous M-step
("stale gain"), kept samples decoded one call each into an ``(F, N, R)`` float64 buffer, square-root
multiplicative updates of W, H and a (no floor, no normalisation), the sampled IS cost with an optional ``tol``
stop, then ``separate()``: 100 MH steps with burn-in 75 of which only the first 10 kept samples are used.

MIN-VAE's published loop (``SE_utils.SpeechEnhancement.run``, section 3): 100 iterations, no stop test; MH on the
expected speech power with the responsibility-weighted two-Gaussian prior, one batched decode of the R kept
samples, the harmonic-mean variance, closed-form responsibilities (``log s`` per dimension, clipped at +-30),
the Gaussian speech posterior from the previous V, IS-NMF with exponent 1, eps floor and l1-normalised W.

Not reproduced: the two crashes of the published code (``np.int``; ``%.4f`` of a shape-(1,) array in the progress
print): nothing is printed. The decoder is the project's ``mlp`` decoder (Linear, tanh, Linear) with exp applied
to its raw log-variance (no clamp), as the authors' decoder does.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from functools import partial
from typing import NamedTuple

import numpy as np
import torch

EPS = np.finfo(float).eps


class TorchDraws:
    """The random stream of pyro-minvae's MCEM as numpy arrays, in the authors' shapes.

    pyro-minvae draws ``rand(F, K)``, ``rand(K, N)``, then per MH step ``randn(N, L)`` and ``rand(N)`` from one
    ``torch.Generator``; this object draws the same numbers (float32, as the project's float32 models do) and
    returns them transposed to ``(L, N)`` / ``(1, N)``.
    """

    def __init__(self, seed: int, dtype: torch.dtype = torch.float32):
        self.gen = torch.Generator().manual_seed(int(seed))
        self.dtype = dtype

    def rand(self, *shape):
        if len(shape) == 2 and shape[0] == 1:  # the accept draws: one per frame
            return torch.rand(shape[1], generator=self.gen, dtype=self.dtype).double().numpy()[None]
        return torch.rand(*shape, generator=self.gen, dtype=self.dtype).double().numpy()

    def randn(self, l_dim, n):
        return torch.randn(n, l_dim, generator=self.gen, dtype=self.dtype).double().numpy().T


class Decoder:
    """``sigma^2(z)``: the model's decoder weights as a plain float32 torch MLP, numpy in and out.

    ``__call__(Z (L, M)) -> (F, M)`` float32 numpy (one decoder call, as the authors' ``decode`` on ``Z.T``).
    """

    def __init__(self, model):
        dec = model.decoder
        if getattr(dec, "cond_dim", 0):
            raise ValueError("the authors' loops here take an unconditioned decoder (A-VAE, MIN-VAE)")
        layers = []
        for layer in list(dec.body) + [dec.out]:
            if isinstance(layer, torch.nn.Linear):
                lin = torch.nn.Linear(layer.in_features, layer.out_features)
                lin.load_state_dict({k: v.detach().float().cpu() for k, v in layer.state_dict().items()})
                layers.append(lin)
            else:
                layers.append(layer)
        self.net = torch.nn.Sequential(*layers).eval()

    @torch.no_grad()
    def __call__(self, Z: np.ndarray) -> np.ndarray:
        z = torch.from_numpy(np.ascontiguousarray(Z.T, dtype=np.float32))
        return torch.exp(self.net(z)).numpy().T


class AuthorsResult(NamedTuple):
    """``S_hat`` ``(F, N)`` complex speech STFT, ``W``, ``H``, ``g``, the iterations run, ``pi_vec`` (MIN-VAE)."""

    S_hat: np.ndarray
    W: np.ndarray
    H: np.ndarray
    g: np.ndarray
    iterations: int
    pi_vec: np.ndarray | None


@dataclass(frozen=True)
class AuthorsSettings:
    """The defaults both published loops run with (section 1), under the authors' names: EM iterations, MH steps
    per E-step, burn-in (so ``niter_MH - burnin`` kept samples), random-walk proposal variance, NMF rank."""

    niter_MCEM: int = 100
    niter_MH: int = 40
    burnin: int = 30
    var_MH: float = 0.01
    K_b: int = 10


def _start(X: np.ndarray, Z0: np.ndarray, K_b: int, seed: int, draws):
    """The start both loops share: one random stream seeded once (or ``draws``), from which W0 ``(F, K)`` then H0
    ``(K, N)`` are drawn uniform and floored at eps, and the latents as a float32 copy ``(L, N)``."""
    rng = draws if draws is not None else np.random.RandomState(seed)
    F, N = X.shape
    W0 = np.maximum(rng.rand(F, K_b), EPS)
    H0 = np.maximum(rng.rand(K_b, N), EPS)
    return rng, W0, H0, np.array(Z0, dtype=np.float32, copy=True)


def _random_walk_mh(decoder, Z, sv, gain, log_ratio, rng, var_MH: float, n_steps: int, n_burn: int):
    """The authors' per-frame random-walk MH, the same in both loops (sections 3a and 4.1); only the target
    differs, given as ``log_ratio(Z, Zp, sv, svp) -> (N,)``.

    ``Z`` ``(L, N)`` float32 is updated in place (accepted float64 proposals down-cast); ``sv`` is the cached
    current-state speech variance ``(F, N)``. Each step draws ``randn(L, N)`` then ``rand(1, N)`` and decodes
    twice: the proposal, then the whole current state again. Returns the kept states (float64, the steps from
    ``n_burn`` on) and the last ``sv``.
    """
    L, N = Z.shape
    kept = []
    for i in range(n_steps):
        Zp = Z + np.sqrt(var_MH) * rng.randn(L, N)
        svp = decoder(Zp) * gain
        log_r = log_ratio(Z, Zp, sv, svp)
        u = rng.rand(1, N)
        acc = (np.log(u) < log_r)[0]
        Z[:, acc] = Zp[:, acc]
        sv = decoder(Z) * gain
        if i >= n_burn:
            kept.append(Z.astype(np.float64))
    return kept, sv


def classic_mcem(
    decoder: Decoder,
    X: np.ndarray,
    Z0: np.ndarray,
    settings: AuthorsSettings = AuthorsSettings(),
    *,
    seed: int = 0,
    draws=None,
    tol: float | None = 1e-5,
    final_MH: int = 100,
    final_burnin: int = 75,
) -> AuthorsResult:
    """A-VAE classic MCEM. ``X`` ``(F, N)`` complex64 mixture STFT, ``Z0`` ``(L, N)`` encoder mean (float32).

    ``tol=None`` runs all ``niter_MCEM`` iterations (the authors pass 1e-5).
    """
    niter_MCEM, niter_MH, burnin, var_MH, K_b = astuple(settings)
    rng, W, H, Z = _start(X, Z0, K_b, seed, draws)
    F, N = X.shape
    R = niter_MH - burnin
    a = np.ones((1, N))
    V = W @ H
    sv = decoder(Z) * a  # cached current-state speech variance (keeps the gain it was computed with)

    def log_ratio(Z, Zp, sv, svp):  # p(x | z, W H, a) with the standard normal prior; |X|^2 recomputed each step
        X_abs2 = np.abs(X) ** 2
        Vx, Vxp = V + sv, V + svp
        return np.sum(np.log(Vx) - np.log(Vxp) + (1 / Vx - 1 / Vxp) * X_abs2, axis=0) + 0.5 * np.sum(
            Z**2 - Zp**2, axis=0
        )

    def metropolis_hastings(n_steps, n_burn):
        nonlocal sv
        kept, sv = _random_walk_mh(decoder, Z, sv, a, log_ratio, rng, var_MH, n_steps, n_burn)
        return kept

    X2 = np.abs(X) ** 2
    cost_prev = None
    iterations_run = 0
    for it in range(niter_MCEM):
        iterations_run = it + 1
        kept = metropolis_hastings(niter_MH, burnin)
        s2 = np.zeros((F, N, R))
        for r in range(R):
            s2[:, :, r] = decoder(kept[r])
        Vs = s2 * a[:, :, None]
        Vx = V[:, :, None] + Vs
        W = W * (((X2 * np.sum(Vx**-2, axis=-1)) @ H.T) / (np.sum(Vx**-1, axis=-1) @ H.T)) ** 0.5
        V = W @ H
        Vx = V[:, :, None] + Vs
        H = H * ((W.T @ (X2 * np.sum(Vx**-2, axis=-1))) / (W.T @ np.sum(Vx**-1, axis=-1))) ** 0.5
        V = W @ H
        Vx = V[:, :, None] + Vs
        num = np.sum(X2 * np.sum(s2 * Vx**-2, axis=-1), axis=0)
        den = np.sum(np.sum(s2 * Vx**-1, axis=-1), axis=0)
        a = a * (num / den) ** 0.5
        Vs = s2 * a[:, :, None]
        Vx = V[:, :, None] + Vs
        cost = np.mean(np.log(Vx) + X2[:, :, None] / Vx)
        if tol is not None and cost_prev is not None and abs(cost_prev - cost) < tol:
            break
        cost_prev = cost
    # separate(): a longer chain, of which only the first R kept samples are used
    kept = metropolis_hastings(final_MH, final_burnin)[:R]
    V = W @ H
    gains = []
    for r in range(len(kept)):
        Vs_r = decoder(kept[r]) * a
        gains.append(Vs_r / (Vs_r + V))
    S_hat = np.mean(gains, axis=0) * X
    return AuthorsResult(S_hat, W, H, a[0], iterations_run, None)


def _minvae_log_ratio(P, pi_vec, mu_A, s_A, mu_V, s_V, Z, Zp, sv, svp):
    """MIN-VAE's MH target (section 3a): E_q(s)[log p(s | z')/p(s | z)] on the expected speech power ``P`` plus
    the log-ratio of the responsibility-weighted two-Gaussian prior; ``(N,)``."""
    return np.sum(np.log(sv) - np.log(svp) + (1 / sv - 1 / svp) * P, axis=0) + 0.5 * np.sum(
        pi_vec * ((Z - mu_A.T) ** 2 - (Zp - mu_A.T) ** 2) / s_A
        + (1 - pi_vec) * ((Z - mu_V.T) ** 2 - (Zp - mu_V.T) ** 2) / s_V,
        axis=0,
    )


def minvae_loop(
    decoder: Decoder,
    X: np.ndarray,
    Z0: np.ndarray,
    mu_A: np.ndarray,
    s_A: float,
    mu_V: np.ndarray,
    s_V: float,
    settings: AuthorsSettings = AuthorsSettings(),
    *,
    seed: int = 0,
    draws=None,
    pi: float = 0.5,
) -> AuthorsResult:
    """MIN-VAE's published variational loop. ``X`` ``(F, N)`` complex64, ``Z0`` ``(L, N)`` visual encoder mean,
    ``mu_A``/``mu_V`` ``(L,)`` prior means, ``s_A``/``s_V`` scalar prior variances."""
    niter_MCEM, niter_MH, burnin, var_MH, K_b = astuple(settings)
    rng, W, H, Z = _start(X, Z0, K_b, seed, draws)
    F, N = X.shape
    L = Z.shape[0]
    mu_A = np.asarray(mu_A, dtype=np.float32).reshape(1, L)
    mu_V = np.asarray(mu_V, dtype=np.float32).reshape(1, L)
    s_A, s_V = np.float32(s_A), np.float32(s_V)
    g = np.ones(N)
    V = W @ H
    Sig_s = np.zeros((F, N))
    Mu_s = X
    pi_vec = np.full(N, pi)
    sv = decoder(Z) * g
    gam = None
    for _ in range(niter_MCEM):
        # (a) E-z: MH on the expected speech power with the weighted two-Gaussian prior
        P = np.abs(Mu_s) ** 2 + Sig_s
        log_ratio = partial(_minvae_log_ratio, P, pi_vec, mu_A, s_A, mu_V, s_V)
        kept, sv = _random_walk_mh(decoder, Z, sv, g, log_ratio, rng, var_MH, niter_MH, burnin)
        samples = np.stack(kept, axis=-1)  # (L, N, R)
        # (b) one batched decode of the kept samples; harmonic mean in float32
        flat = samples.transpose(1, 2, 0).reshape(-1, L)  # (N R, L)
        s2 = decoder(flat.T).T.reshape(N, -1, F).transpose(2, 0, 1)  # (F, N, R) float32
        gam = 1 / np.mean(1 / s2, axis=-1)
        # (c) E-c: responsibilities of the audio prior
        A = np.sum(np.mean((samples - mu_A.T[:, :, None]) ** 2, axis=-1) / (2 * s_A) + np.log(s_A), axis=0)
        B = np.sum(np.mean((samples - mu_V.T[:, :, None]) ** 2, axis=-1) / (2 * s_V) + np.log(s_V), axis=0)
        beta = np.clip(B - A, -30, 30)
        pi_vec = pi / (pi + (1 - pi) * np.exp(-beta))
        pi = np.mean(pi_vec)
        # (d) E-s: Gaussian speech posterior with the previous V
        Sig_s = V * gam / (V + gam)
        Mu_s = gam / (V + gam) * X
        # (e) M: IS-NMF, exponent 1, eps floor, l1-normalised W
        Vm = np.abs(X - Mu_s) ** 2 + Sig_s
        W = W * ((V**-2 * Vm) @ H.T) / (V**-1 @ H.T)
        W = np.maximum(W, EPS)
        V = W @ H
        H = H * (W.T @ (V**-2 * Vm)) / (W.T @ V**-1)
        H = np.maximum(H, EPS)
        c = np.sum(np.abs(W), axis=0)
        W = W / c
        H = H * c[:, None]
        V = W @ H
    S_hat = gam / (V + gam) * X
    return AuthorsResult(S_hat, W, H, g, niter_MCEM, pi_vec)


__all__ = ["Decoder", "TorchDraws", "AuthorsSettings", "AuthorsResult", "classic_mcem", "minvae_loop"]
