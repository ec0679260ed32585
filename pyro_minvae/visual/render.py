"""Render a grayscale mouth ROI video (like NTCD-TIMIT's 67x67 lip crops) and lip landmarks from phone timings.

Pipeline: phones -> viseme classes -> coarticulated articulatory trajectory sampled at the video frame
centres (:func:`pyro_minvae.visual.visemes.trajectory`) -> lip geometry in mouth coordinates (per-speaker
size and shape) -> soft-edged raster of skin, lips, mouth cavity, teeth and tongue -> head motion
(translation, rotation, scale), illumination (gradient, per-frame gain) -> sensor blur and noise -> uint8.

Only the viseme class and the timing of each phone reach the image: no pitch, voicing or spectral detail.

Landmarks follow the 20 mouth points of the 68-point iBUG/dlib scheme (points 48-67): indices 0-11 the
outer contour (0 left corner, 1-5 upper lip left to right, 6 right corner, 7-11 lower lip right to left),
12-19 the inner contour (12 left corner, 13-15 upper inner, 16 right corner, 17-19 lower inner right to
left). Coordinates are ``(x, y)`` in ROI pixels (x to the right, y down), inside ``[0, size - 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .align import PhoneSegment, fill_silence
from .visemes import trajectory, viseme_of

N_LANDMARKS = 20
# pairs (upper inner, lower inner) facing each other, for the opening measure
_INNER_PAIRS = ((13, 19), (14, 18), (15, 17))
_REF_SIZE = 67.0
_CHUNK = 64  # frames rasterised at once


@dataclass(frozen=True)
class SpeakerAppearance:
    """Per-speaker look. Lengths in pixels of a 67-pixel ROI (scaled for other sizes); tones are gray
    levels 0..255 before illumination; angles in degrees."""

    half_width: float = 19.5  # mouth half-width at neutral spread
    max_opening: float = 17.0  # inner-lip gap at opening = 1
    upper_thickness: float = 5.0
    lower_thickness: float = 6.5
    bow_depth: float = 1.5  # cupid's bow dip of the upper lip
    corner_curve: float = 0.6  # exponent of the lip profile towards the corners (smaller: fuller corners)
    centre_x: float = 0.0  # mouth centre offset from the ROI centre
    centre_y: float = 0.0
    tilt: float = 0.0  # static head roll
    skin_tone: float = 165.0
    lip_contrast: float = 40.0  # how much darker the lips are than the skin
    cavity_tone: float = 35.0
    teeth_tone: float = 215.0
    tongue_tone: float = 110.0
    light_gain: float = 1.0
    light_gradient_x: float = 0.0  # relative change of brightness across the ROI, left to right
    light_gradient_y: float = -0.1  # top to bottom
    articulation_gain: float = 1.0  # how far the speaker moves towards the targets
    head_motion: float = 0.8  # std of head translation (px)
    head_rotation: float = 1.5  # std of head roll (degrees)
    noise_std: float = 3.0  # sensor noise (gray levels)
    blur: float = 0.5  # 0..1 strength of a 3x3 optical blur
    # face texture ("ntcd" style; all 0 in the classic style, which then renders exactly as before)
    skin_texture: float = 0.0  # relative std of a static, smooth skin texture (pores, stubble, make-up)
    lip_striation: float = 0.0  # relative depth of the vertical lip wrinkles
    chin_light: float = 0.0  # relative brightening of the chin below the lower lip
    nose_shadow: float = 0.0  # relative darkening of the top rows (nose and philtrum shadow)
    teeth_show: float = 0.0  # extra teeth visibility in proportion to the opening (speakers who bare them)
    teeth_height: float = 0.22  # upper teeth band height as a fraction of the lip gap
    texture_seed: int = 0

    @classmethod
    def from_seed(cls, seed: int, style: str = "classic") -> "SpeakerAppearance":
        """A random but plausible speaker, deterministic in ``seed``, drawn uniformly from the ranges of
        ``style`` (one of :data:`STYLES`, see :data:`STYLE_RANGES`)."""
        if style not in STYLE_RANGES:
            raise ValueError(f"unknown mouth style {style!r}; choose one of {', '.join(STYLES)}")
        r = np.random.default_rng(np.random.SeedSequence([int(seed), 0x11F5]))
        values = {name: r.uniform(lo, hi) for name, (lo, hi) in STYLE_RANGES[style].items()}  # drawn in this order
        # the same lip colour is less dark on dark skin (written (u * skin) / 150 as it always was: bit-for-bit)
        values["lip_contrast"] = values["lip_contrast"] * values["skin_tone"] / 150.0
        return cls(**values, texture_seed=int(seed))


# Per field, its uniform range in each of the STYLES (columns) in the order the fields are drawn (the order is part
# of the seed -> speaker mapping: corpora rendered earlier stay reproducible); None: the style does not draw the
# field, which keeps its default. "classic": small cartoon-like lips centred in a grey frame. "ntcd": mouth ROIs
# like NTCD-TIMIT's: the mouth fills the width (corners near the edges) and sits in the upper half above the chin,
# full lips only slightly darker than the skin, teeth often visible, textured skin and lips, wide ranges of
# lighting, pose and camera quality.
STYLES = ("classic", "ntcd")
_RANGES: dict[str, tuple[tuple[float, float] | None, ...]] = {
    "skin_tone": ((95.0, 200.0), (90.0, 215.0)),
    "half_width": ((16.0, 22.5), (23.0, 31.0)),
    "max_opening": ((13.0, 20.0), (9.0, 17.0)),
    "upper_thickness": ((4.0, 6.5), (5.5, 9.0)),
    "lower_thickness": ((4.5, 7.5), (7.0, 11.5)),
    "bow_depth": ((0.5, 2.5), (0.5, 3.0)),
    "corner_curve": ((0.45, 0.8), (0.35, 0.75)),
    "centre_x": ((-2.0, 2.0), (-4.0, 4.0)),
    "centre_y": ((-3.0, 2.0), (-15.0, -4.0)),
    "tilt": ((-5.0, 5.0), (-7.0, 7.0)),
    "lip_contrast": ((20.0, 55.0), (8.0, 40.0)),
    "cavity_tone": ((15.0, 50.0), (20.0, 70.0)),
    "teeth_tone": ((175.0, 235.0), (165.0, 240.0)),
    "tongue_tone": ((80.0, 130.0), (70.0, 140.0)),
    "light_gain": ((0.8, 1.15), (0.75, 1.2)),
    "light_gradient_x": ((-0.3, 0.3), (-0.45, 0.45)),
    "light_gradient_y": ((-0.3, 0.1), (-0.35, 0.25)),
    "articulation_gain": ((0.8, 1.15), (0.7, 1.2)),
    "head_motion": ((0.3, 1.2), (0.4, 2.0)),
    "head_rotation": ((0.5, 2.5), (0.5, 3.0)),
    "noise_std": ((1.5, 5.0), (1.0, 6.0)),
    "blur": ((0.2, 0.9), (0.2, 1.0)),
    "skin_texture": (None, (0.01, 0.04)),
    "lip_striation": (None, (0.0, 0.08)),
    "chin_light": (None, (0.0, 0.12)),
    "nose_shadow": (None, (0.0, 0.25)),
    "teeth_show": (None, (0.3, 2.5)),
    "teeth_height": (None, (0.25, 0.55)),
}
STYLE_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    style: {name: ranges[k] for name, ranges in _RANGES.items() if ranges[k] is not None}
    for k, style in enumerate(STYLES)
}


def _smooth_noise(rng: np.random.Generator, n: int, rho: float, std: float) -> np.ndarray:
    """AR(1) noise ``(n,)`` with stationary standard deviation ``std`` (smooth head motion)."""
    e = rng.standard_normal(n) * std * np.sqrt(1.0 - rho * rho)
    out = np.empty(n)
    acc = rng.standard_normal() * std
    for i in range(n):
        acc = rho * acc + e[i]
        out[i] = acc
    return out


def _geometry(params: np.ndarray, app: SpeakerAppearance, scale: float) -> dict[str, np.ndarray]:
    """Lip geometry per frame from articulatory params ``(N, 5)``; lengths in pixels, shapes ``(N,)``."""
    g = app.articulation_gain
    opening = np.clip(params[:, 0] * g, 0.0, 1.0)
    width = np.clip(0.5 + (params[:, 1] - 0.5) * g, 0.0, 1.0)
    prot = np.clip(params[:, 2] * g, 0.0, 1.0)
    half_w = app.half_width * scale * (0.80 + 0.32 * width - 0.22 * prot + 0.06 * opening)
    gap = app.max_opening * scale * opening * (1.0 - 0.15 * prot)
    return {
        "W": half_w,
        "Wi": half_w * (0.86 - 0.25 * prot),
        "a_up": 0.35 * gap,  # upper inner lip rises by a third of the gap, the jaw drops the rest
        "a_lo": 0.65 * gap,
        "t_up": app.upper_thickness * scale * (1.0 + 0.35 * prot - 0.15 * width),
        "t_lo": app.lower_thickness * scale * (1.0 + 0.30 * prot - 0.15 * width),
        "shape": 0.5 + 0.25 * prot,  # exponent of the inner profile: rounder opening when protruded
        "teeth": np.clip(params[:, 3] + app.teeth_show * opening, 0.0, 1.0),
        "tongue": np.clip(params[:, 4], 0.0, 1.0),
    }


def _profile(u: np.ndarray, half: np.ndarray, power) -> np.ndarray:
    """``(1 - (u / half)^2)^power`` clipped at 0: 1 at the centre, 0 at and beyond the corners."""
    return np.clip(1.0 - (u / half) ** 2, 0.0, 1.0) ** power


def _curves(u: np.ndarray, geo: dict[str, np.ndarray], app: SpeakerAppearance, scale: float, ex=None):
    """Vertical positions (mouth coords, v down) of the four lip curves at horizontal positions ``u``.

    ``u`` broadcasts against per-frame geometry expanded with ``ex`` (a function adding trailing axes).
    """
    ex = ex or (lambda a: a)
    W, Wi = ex(geo["W"]), ex(geo["Wi"])
    p_in = _profile(u, Wi, ex(geo["shape"]))
    p_out = _profile(u, W, app.corner_curve)
    bow = (
        app.bow_depth
        * scale
        * (np.exp(-((u / (0.14 * W)) ** 2)) - 0.5 * np.exp(-(((np.abs(u) - 0.3 * W) / (0.12 * W)) ** 2)))
    )
    y_iu = -ex(geo["a_up"]) * p_in
    y_il = ex(geo["a_lo"]) * p_in
    y_ou = np.minimum(y_iu, 0.0) - ex(geo["t_up"]) * p_out + bow * p_out
    y_ol = np.maximum(y_il, 0.0) + ex(geo["t_lo"]) * p_out
    return y_iu, y_il, y_ou, y_ol


def _sat(d: np.ndarray) -> np.ndarray:
    """Soft (one-pixel anti-aliased) step of a signed distance in pixels."""
    return np.clip(d + 0.5, 0.0, 1.0)


def render_clip(
    phones: Sequence[PhoneSegment],
    n_frames: int,
    appearance: SpeakerAppearance,
    fps: float = 30.0,
    seed: int = 0,
    size: int = 67,
) -> tuple[np.ndarray, np.ndarray]:
    """Render ``n_frames`` video frames of a mouth saying ``phones``.

    phones: segments in seconds, contiguous or not (gaps, and time before the first and after the last
    segment, are silence); frame k shows the instant ``(k + 0.5) / fps``. Returns ``frames``
    ``(n_frames, size, size)`` uint8 grayscale and ``landmarks`` ``(n_frames, 20, 2)`` float32 ``(x, y)`` ROI
    pixel coordinates (see the module docstring for the order).
    Deterministic given ``seed`` (head motion, illumination flicker, sensor noise) and ``appearance``.
    """
    if n_frames < 0 or fps <= 0 or size < 16:
        raise ValueError(f"need n_frames >= 0, fps > 0, size >= 16; got {n_frames}, {fps}, {size}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
    scale = size / _REF_SIZE
    app = appearance
    times = (np.arange(n_frames) + 0.5) / fps
    if any(not (np.isfinite(p.start) and np.isfinite(p.end)) or p.end < p.start for p in phones):
        raise ValueError("every phone segment needs finite start <= end (seconds)")
    horizon = max([n_frames / fps] + [p.end for p in phones])
    phones = fill_silence([(p.phone, p.start, p.end) for p in phones], horizon)  # gaps and tail are silence
    starts = np.array([p.start for p in phones], dtype=np.float64)
    ends = np.array([p.end for p in phones], dtype=np.float64)
    visemes = [viseme_of(p.phone) for p in phones]
    params = np.concatenate(
        [trajectory(starts, ends, visemes, times[lo : lo + 256]) for lo in range(0, n_frames, 256)]
        or [np.zeros((0, 5))]
    )  # (N, 5)
    geo = _geometry(params, app, scale)

    # head motion: smooth translation, roll and scale around the speaker's mouth position
    dx = _smooth_noise(rng, n_frames, 0.92, app.head_motion * scale)
    dy = _smooth_noise(rng, n_frames, 0.92, app.head_motion * scale)
    rot = np.deg2rad(app.tilt + _smooth_noise(rng, n_frames, 0.95, app.head_rotation))
    zoom = 1.0 + _smooth_noise(rng, n_frames, 0.97, 0.015)
    gain = app.light_gain * (1.0 + _smooth_noise(rng, n_frames, 0.8, 0.015))
    cx = (size - 1) / 2.0 + app.centre_x * scale + dx
    cy = (size - 1) / 2.0 + app.centre_y * scale + dy
    cos, sin = np.cos(rot), np.sin(rot)

    texture = _skin_texture(app, size)
    frames = np.empty((n_frames, size, size), dtype=np.uint8)
    for lo in range(0, n_frames, _CHUNK):  # chunks keep the (chunk, size, size) temporaries in cache
        sl = slice(lo, min(lo + _CHUNK, n_frames))
        frames[sl] = _raster(
            {k: v[sl] for k, v in geo.items()},
            app,
            scale,
            size,
            cx[sl],
            cy[sl],
            cos[sl],
            sin[sl],
            zoom[sl],
            gain[sl],
            rng,
            texture,
        )

    landmarks = _landmarks(geo, app, scale, cx, cy, cos, sin, zoom, size)
    return frames, landmarks


def _skin_texture(app: SpeakerAppearance, size: int) -> np.ndarray | None:
    """A static multiplicative skin texture ``(size, size)`` around 1 (the speaker's face; ``None`` when off):
    white noise smoothed over ~1.5 px plus a coarser blotch field, std ``app.skin_texture``."""
    if app.skin_texture <= 0:
        return None
    r = np.random.default_rng(np.random.SeedSequence([app.texture_seed, 0x7E47]))
    fine = _box_blur(r.standard_normal((size, size)), 1)
    coarse = _box_blur(r.standard_normal((size, size)), 4)
    field = fine / (fine.std() + 1e-9) + 0.4 * coarse / (coarse.std() + 1e-9)
    return (1.0 + app.skin_texture * field / field.std()).astype(np.float32)


def _box_blur(x: np.ndarray, radius: int) -> np.ndarray:
    """Separable box blur of a 2-d array with edge padding."""
    k = 2 * radius + 1
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        c = np.cumsum(np.pad(x, pad, mode="edge"), axis=axis)
        c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
        x = (np.take(c, range(k, c.shape[axis]), axis=axis) - np.take(c, range(0, c.shape[axis] - k), axis=axis)) / k
    return x


def _raster(
    geo,
    app: SpeakerAppearance,
    scale: float,
    size: int,
    cx,
    cy,
    cos,
    sin,
    zoom,
    gain,
    rng: np.random.Generator,
    texture: np.ndarray | None = None,
) -> np.ndarray:
    """Frames ``(n, size, size)`` uint8 for per-frame geometry and pose arrays of length n; ``texture``
    ``(size, size)`` multiplies the skin (see :func:`_skin_texture`)."""

    def ex(a):  # (N,) -> (N, 1, 1)
        return np.asarray(a, dtype=np.float32)[:, None, None]

    # pixel grid -> mouth coordinates (u right, v down), per frame: (N, S, S)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    X = xx[None] - ex(cx)
    Y = yy[None] - ex(cy)
    u = (X * ex(cos) + Y * ex(sin)) / ex(zoom)
    v = (-X * ex(sin) + Y * ex(cos)) / ex(zoom)

    y_iu, y_il, y_ou, y_ol = _curves(u, geo, app, scale, ex)
    W, Wi = ex(geo["W"]), ex(geo["Wi"])
    inside_w = _sat(W - np.abs(u))
    m_lip_all = _sat(v - y_ou) * _sat(y_ol - v) * inside_w  # lips + opening
    m_in = _sat(v - y_iu) * _sat(y_il - v) * _sat(Wi - np.abs(u))
    m_in = np.minimum(m_in, m_lip_all)
    m_lip = m_lip_all - m_in

    # skin: base tone, a soft shadow under the lower lip (chin crease) and along the upper lip
    skin = np.float32(app.skin_tone) * (
        1.0
        - 0.10 * np.exp(-(((v - y_ol - 4.5 * scale) / (3.5 * scale)) ** 2)) * _sat(1.1 * W - np.abs(u))
        - 0.06 * np.exp(-(((v - y_ou + 1.5 * scale) / (2.0 * scale)) ** 2)) * inside_w
    )
    if app.chin_light > 0:  # the chin below the lower lip catches the light
        skin = skin * (1.0 + app.chin_light * np.clip((v - y_ol - 7.0 * scale) / (10.0 * scale), 0.0, 1.0))
    if app.nose_shadow > 0:  # nose and philtrum shade the top of the ROI
        skin = skin * (1.0 - app.nose_shadow * np.exp(-((yy[None] / (7.0 * scale)) ** 2)))
    if texture is not None:
        skin = skin * texture[None]
    # lips: darker than skin, lower lip with a highlight
    lip_base = app.skin_tone - app.lip_contrast
    t_lo = ex(geo["t_lo"])
    highlight = np.exp(-(((v - (np.maximum(y_il, 0.0) + 0.45 * t_lo)) / (0.3 * t_lo + 0.5)) ** 2))
    lip = np.float32(lip_base) * (0.92 + 0.16 * highlight * (v > 0))
    if app.lip_striation > 0:  # vertical wrinkles, moving with the lips
        lip = lip * (1.0 - app.lip_striation * (0.5 + 0.5 * np.cos(2.0 * np.pi * u / (2.4 * scale))))
    if texture is not None:
        lip = lip * texture[None]
    # mouth cavity: dark; upper teeth band under the upper lip, lower teeth faint; tongue blob low in the gap
    gap = ex(geo["a_up"] + geo["a_lo"])
    teeth_h = app.teeth_height * gap + 1.2 * scale
    teeth_mask = _sat(y_iu + teeth_h - v) * _sat(0.75 * Wi - np.abs(u)) * ex(geo["teeth"])
    low_teeth = _sat(v - (y_il - 0.5 * teeth_h)) * _sat(0.6 * Wi - np.abs(u)) * ex(geo["teeth"]) * 0.6
    tongue_mask = np.clip(
        1.0 - (u / (0.5 * Wi + 1e-3)) ** 2 - ((v - (y_il - 0.25 * gap)) / (0.3 * gap + 1.0)) ** 2, 0.0, 1.0
    ) ** 0.5 * ex(geo["tongue"])
    cavity = np.float32(app.cavity_tone) + 0.0 * v
    cavity = cavity + (app.tongue_tone - cavity) * tongue_mask
    teeth_tone = np.float32(app.teeth_tone)
    if app.teeth_show > 0:  # gaps between the incisors
        teeth_tone = teeth_tone * (1.0 - 0.35 * np.cos(np.pi * u / (8.0 * scale)) ** 16)
    cavity = cavity + (teeth_tone - cavity) * np.maximum(teeth_mask, low_teeth)

    img = skin * (1.0 - m_lip - m_in) + lip * m_lip + cavity * m_in
    # illumination: a linear gradient across the ROI and a per-frame gain
    light = 1.0 + app.light_gradient_x * (xx / (size - 1) - 0.5) + app.light_gradient_y * (yy / (size - 1) - 0.5)
    img = img * light[None] * ex(gain)
    # optics: a separable 3-tap blur of strength app.blur, then sensor noise
    if app.blur > 0:
        k = app.blur * 0.25
        for axis in (1, 2):
            pad = np.concatenate([np.take(img, [0], axis=axis), img, np.take(img, [-1], axis=axis)], axis=axis)
            sl = [slice(None)] * 3
            lo, mid, hi = list(sl), list(sl), list(sl)
            lo[axis], mid[axis], hi[axis] = slice(0, -2), slice(1, -1), slice(2, None)
            img = (1.0 - 2.0 * k) * pad[tuple(mid)] + k * (pad[tuple(lo)] + pad[tuple(hi)])
    img = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(app.noise_std)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _landmarks(geo, app, scale, cx, cy, cos, sin, zoom, size) -> np.ndarray:
    """The 20 mouth points ``(N, 20, 2)`` from the same curves the raster uses."""
    W, Wi = geo["W"][:, None], geo["Wi"][:, None]  # (N, 1)
    n = W.shape[0]
    fr_out_up = np.array([-1.0, -2 / 3, -1 / 3, 0.0, 1 / 3, 2 / 3, 1.0])
    fr_out_lo = np.array([2 / 3, 1 / 3, 0.0, -1 / 3, -2 / 3])
    fr_in_up = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    fr_in_lo = np.array([0.5, 0.0, -0.5])

    def ex2(a):
        return np.asarray(a)[:, None]

    u_ou, u_ol = W * fr_out_up, W * fr_out_lo
    u_iu, u_il = Wi * fr_in_up, Wi * fr_in_lo
    _, _, y_ou, _ = _curves(u_ou, geo, app, scale, ex2)
    _, _, _, y_ol = _curves(u_ol, geo, app, scale, ex2)
    y_iu, _, _, _ = _curves(u_iu, geo, app, scale, ex2)
    _, y_il, _, _ = _curves(u_il, geo, app, scale, ex2)
    u = np.concatenate([u_ou, u_ol, u_iu, u_il], axis=1)  # (N, 20)
    v = np.concatenate([y_ou, y_ol, y_iu, y_il], axis=1)
    assert u.shape == (n, N_LANDMARKS)
    z, c, s = zoom[:, None], cos[:, None], sin[:, None]
    x = cx[:, None] + z * (u * c - v * s)
    y = cy[:, None] + z * (u * s + v * c)
    pts = np.stack([x, y], axis=-1)
    return np.clip(pts, 0.0, size - 1.0).astype(np.float32)


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip opening ``(N,)`` in pixels: mean distance of the three facing inner-lip point pairs of
    landmarks ``(N, 20, 2)`` (order of :func:`render_clip`)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (N_LANDMARKS, 2):
        raise ValueError(f"landmarks must have shape (N, {N_LANDMARKS}, 2); got {lm.shape}")
    d = [np.linalg.norm(lm[:, a] - lm[:, b], axis=-1) for a, b in _INNER_PAIRS]
    return np.mean(d, axis=0)
