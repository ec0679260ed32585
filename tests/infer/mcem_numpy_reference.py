"""Independent numpy implementations of the authors' two enhancement loops (AUTHORS_LOOPS.md sections 3, 4).

(A uniquely named helper module, imported by test_mcem.py.)

Written in the authors' structure (the current state is re-decoded after every MH step, kept samples are decoded
again for the M-step), in float64 numpy, with our documented fixes (all kept samples in the final estimate, fresh
gain, exact Gaussian log density in the responsibilities). Random numbers are *injected*: ``draws`` yields the
same tensors, in the same order, as the torch implementation's generator (W0, H0, then per MH step
``randn(N, L)`` and ``rand(N)``).
"""

from __future__ import annotations

import numpy as np
import torch


def _lin(layer, x):
    return x @ layer.weight.detach().double().numpy().T + layer.bias.detach().double().numpy()


def decoder(model, z):
    """log sigma^2(z) for the 'mlp' decoder: Linear -> tanh -> Linear (no conditioning)."""
    body = model.decoder.body
    return _lin(model.decoder.out, np.tanh(_lin(body[0], z)))


def encoder_mean(enc, x, log_input):
    h = np.log(np.maximum(x, 0) + 1e-8) if log_input else x
    for layer in enc.body:
        if isinstance(layer, torch.nn.Linear):
            h = _lin(layer, h)
        elif isinstance(layer, torch.nn.Tanh):
            h = np.tanh(h)
        else:
            h = np.maximum(h, 0)
    return _lin(enc.loc, h)


class Draws:
    def __init__(self, seed):
        self.gen = torch.Generator().manual_seed(seed)

    def rand(self, *shape):
        return torch.rand(*shape, generator=self.gen, dtype=torch.float64).numpy()

    def randn(self, *shape):
        return torch.randn(*shape, generator=self.gen, dtype=torch.float64).numpy()


EPS = np.finfo(np.float64).eps


def nmf_start(d, P, K, start):
    """The initial W ``(F, K)``, H ``(K, N)``: raw U[0, 1) draws (``start`` None, the paper), or W's rows scaled so
    the mean variance over frames in bin f is ``start`` times the lower median over frames of ``P`` ``(F, N)``."""
    W = np.maximum(d.rand(P.shape[0], K), EPS)
    H = np.maximum(d.rand(K, P.shape[1]), EPS)
    if start is not None:
        median = np.sort(P, axis=1)[:, (P.shape[1] - 1) // 2]
        W = np.maximum(W * (np.maximum(start * median, EPS) / (W @ H.mean(1)))[:, None], EPS)
    return W, H


def mixture_prior(model):
    """``(logn, responsibilities)`` for a MIN-VAE prior: per-component log N(z; mu_m, s_m I) ``(L, N) -> (M, N)``
    and q(c) ``(N, M)`` from kept samples with the published +-30 clip."""
    mu = model.prior.loc.detach().double().numpy()  # (M, L)
    s = np.exp(model.prior.log_var.detach().double().numpy())  # (M,)
    L = mu.shape[1]

    def logn(Zc):
        return np.stack(
            [
                -0.5 * ((Zc - mu[m][:, None]) ** 2).sum(0) / s[m] - 0.5 * L * np.log(2 * np.pi * s[m])
                for m in range(len(s))
            ]
        )

    def responsibilities(kept, pi):
        lp = np.mean([logn(k) for k in kept], axis=0)  # (M, N)
        lp = np.maximum(lp - lp.max(0), -30.0)
        a = np.log(pi)[:, None] + lp
        a = np.exp(a - a.max(0))
        return (a / a.sum(0)).T

    return logn, responsibilities


def classic(
    model, X, seed, iterations, mh_steps, burn_in, final_steps, final_burn_in, K, var=0.01, lips=None, start=None
):
    """Classic MCEM. X (F, N) complex. Returns (S_hat (F, N), W, H, g, responsibilities or None).

    Standard normal prior (A-VAE), or with ``lips`` ``(N, D)`` a MIN-VAE: z starts at the lips encoder's mean,
    the MH target uses the mixture prior log sum_m pi_m N(z; mu_m, s_m I), and after each E-step the
    responsibilities are re-estimated from the kept samples and pi = their mean (pi starts uniform). ``start``:
    the NMF start (:func:`nmf_start`)."""
    d = Draws(seed)
    F, N = X.shape
    P = np.abs(X) ** 2
    W, H = nmf_start(d, P, K, start)
    g = np.ones((1, N))
    resp = None
    if lips is None:
        Z = encoder_mean(model.guide_net.encoder, P.T, True).T  # (L, N)

        def logprior(Zc):
            return -0.5 * (Zc**2).sum(0)
    else:
        Z = encoder_mean(model.guide_net.encoders[model.guide_net.modalities.index("lips")], lips, False).T
        logn, responsibilities = mixture_prior(model)
        pi = np.full(len(model.prior.log_var), 1.0 / len(model.prior.log_var))

        def logprior(Zc):
            a = np.log(pi)[:, None] + logn(Zc)
            return a.max(0) + np.log(np.exp(a - a.max(0)).sum(0))

    L = Z.shape[0]

    def mh(Z, steps, burn):
        V = W @ H
        kept = []
        for i in range(steps):
            Zp = Z + np.sqrt(var) * d.randn(N, L).T
            sv = np.exp(decoder(model, Z.T).T) * g
            svp = np.exp(decoder(model, Zp.T).T) * g
            logr = (
                (np.log(V + sv) - np.log(V + svp) + (1 / (V + sv) - 1 / (V + svp)) * P).sum(0)
                + logprior(Zp)
                - logprior(Z)
            )
            u = d.rand(N)
            acc = np.log(u) < logr
            Z = np.where(acc[None], Zp, Z)
            if i >= burn:
                kept.append(Z.copy())
        return Z, kept

    for _ in range(iterations):
        Z, kept = mh(Z, mh_steps, burn_in)
        if lips is not None:
            resp = responsibilities(kept, pi)
            pi = resp.mean(0)
        s2 = np.stack([np.exp(decoder(model, k.T).T) for k in kept])  # (R, F, N)
        V = W @ H
        vx = V + g * s2
        W = np.maximum(W * (((P * (vx**-2).sum(0)) @ H.T) / ((vx**-1).sum(0) @ H.T)) ** 0.5, EPS)
        V = W @ H
        vx = V + g * s2
        H = np.maximum(H * ((W.T @ (P * (vx**-2).sum(0))) / (W.T @ (vx**-1).sum(0))) ** 0.5, EPS)
        V = W @ H
        vx = V + g * s2
        num = (P * (s2 * vx**-2).sum(0)).sum(0)
        den = (s2 * vx**-1).sum(0).sum(0)
        g = np.maximum(g * (num / den) ** 0.5, EPS)
    Z, kept = mh(Z, final_steps, final_burn_in)
    V = W @ H
    vs = np.stack([g * np.exp(decoder(model, k.T).T) for k in kept])
    S = (vs / (vs + V)).mean(0) * X
    if lips is not None:
        resp = responsibilities(kept, pi)
    return S, W, H, g[0], resp


def minvae(model, X, lips, seed, iterations, mh_steps, burn_in, K, var=0.01, start=None):
    """MIN-VAE's variational loop (M components). Returns (S_hat (F, N), W, H, responsibilities (N, M)).
    ``start``: the NMF start (:func:`nmf_start`)."""
    d = Draws(seed)
    F, N = X.shape
    P = np.abs(X) ** 2
    W, H = nmf_start(d, P, K, start)
    lips_enc = model.guide_net.encoders[model.guide_net.modalities.index("lips")]
    Z = encoder_mean(lips_enc, lips, False).T  # (L, N)
    L = Z.shape[0]
    logn, responsibilities = mixture_prior(model)
    M = len(model.prior.log_var)
    resp = np.full((N, M), 1.0 / M)
    pi = np.full(M, 1.0 / M)
    Ps = P.copy()
    for _ in range(iterations):
        kept = []
        for i in range(mh_steps):
            Zp = Z + np.sqrt(var) * d.randn(N, L).T
            sv = np.exp(decoder(model, Z.T).T)
            svp = np.exp(decoder(model, Zp.T).T)
            logr = (np.log(sv) - np.log(svp) + (1 / sv - 1 / svp) * Ps).sum(0) + (resp.T * (logn(Zp) - logn(Z))).sum(0)
            u = d.rand(N)
            Z = np.where((np.log(u) < logr)[None], Zp, Z)
            if i >= burn_in:
                kept.append(Z.copy())
        inv = np.mean([np.exp(-decoder(model, k.T).T) for k in kept], axis=0)
        gam = 1.0 / inv
        resp = responsibilities(kept, pi)
        pi = resp.mean(0)
        V = W @ H
        Sig = V * gam / (V + gam)
        Mu = gam / (V + gam) * X
        Ps = np.abs(Mu) ** 2 + Sig
        Vm = np.abs(X - Mu) ** 2 + Sig
        W = np.maximum(W * ((Vm * V**-2) @ H.T) / (V**-1 @ H.T), EPS)
        V = W @ H
        H = np.maximum(H * (W.T @ (Vm * V**-2)) / (W.T @ V**-1), EPS)
        c = np.abs(W).sum(0)
        W = W / c
        H = H * c[:, None]
    V = W @ H
    return gam / (V + gam) * X, W, H, resp
