# Copyright (c) CPS4 contributors. All rights reserved.
"""The drawn anatomy and tissue appearance of one synthetic case.

Sizes are in millimetres along the column: ``s`` is the arc length along
the column centreline (0 at the superior endplate of S1, positive upwards)
and ``t`` the signed distance from the centreline (positive posterior).
Level index 0 is L5 ... 8 is T9, 9 is T8 and 10 is T7; disc ``i`` lies
directly below vertebra ``i`` (0 = L5/S ... 8 = T9/T10).
"""
from dataclasses import dataclass
from typing import Dict

import numpy as np

from .params import NUM_LEVELS

# Reference anatomy in millimetres per level (L5 ... T7).
REF_BODY_HEIGHT = np.array(
    [27.0, 28.0, 28.5, 28.0, 27.0, 25.0, 23.5, 22.0, 21.0, 20.5, 20.0])
REF_BODY_DEPTH = np.array(
    [35.0, 35.5, 35.0, 34.0, 32.5, 31.0, 29.5, 28.5, 27.5, 27.0, 26.5])
REF_BODY_WIDTH = np.array(
    [50.0, 49.0, 47.0, 45.0, 43.0, 40.0, 37.5, 35.5, 34.0, 33.0, 32.0])
REF_DISC_HEIGHT = np.array(
    [10.5, 11.5, 11.0, 10.5, 9.5, 7.5, 6.5, 6.0, 5.5, 5.0, 5.0])
REF_CANAL_HALF_WIDTH = np.array(
    [12.0, 11.5, 11.0, 10.5, 10.5, 9.5, 9.0, 8.5, 8.5, 8.5, 8.5])
REF_PEDICLE_WIDTH = np.array(
    [9.0, 8.5, 8.0, 7.5, 7.0, 6.5, 6.0, 6.0, 6.0, 6.0, 6.0])
REF_SPINOUS_LENGTH = np.array(
    [24.0, 28.0, 30.0, 30.0, 29.0, 28.0, 30.0, 32.0, 34.0, 35.0, 36.0])
REF_SPINOUS_TILT = np.deg2rad(
    [8.0, 5.0, 5.0, 8.0, 12.0, 20.0, 28.0, 35.0, 40.0, 45.0, 50.0])


@dataclass(frozen=True)
class Anatomy:
    """Unit sizes, their stacking along ``s`` and the posterior elements.

    Per-level arrays have :data:`NUM_LEVELS` entries. The ``*_knots``
    arrays hold slowly varying quantities at the positions ``knots`` along
    ``s`` (sacrum tip, mid sacrum, S1, the body centres, above the top);
    :meth:`profile` interpolates them.
    """

    half_height: np.ndarray
    half_depth: np.ndarray
    half_width: np.ndarray
    body_offset: np.ndarray
    cavity: np.ndarray
    waist: np.ndarray
    disc_height: np.ndarray
    disc_hydration: np.ndarray
    disc_bulge_ant: np.ndarray
    disc_bulge_post: np.ndarray
    disc_cleft: np.ndarray
    center: np.ndarray
    disc_lo: np.ndarray
    disc_hi: np.ndarray
    top: np.ndarray
    sacrum_half_depth: float
    s1_height: float
    sacrum_length: float
    sacrum_half_width: float
    sacrum_cavity: float
    canal_gap: float
    canal_depth: np.ndarray
    canal_half_width: np.ndarray
    pedicle_width: np.ndarray
    lamina_thickness: float
    spinous_length: np.ndarray
    spinous_tilt: np.ndarray
    spinous_half_width: float
    spinous_height: np.ndarray
    facet_gap: float
    sac_end: float
    conus: float
    knots: np.ndarray
    depth_knots: np.ndarray
    canal_knots: np.ndarray
    canal_width_knots: np.ndarray
    width_knots: np.ndarray

    def profile(self, s: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Interpolate ``values`` given at :attr:`knots` at ``s``."""
        return np.interp(s, self.knots, values)

    def depth_at(self, s):
        """Half AP depth of the column (bodies / sacrum) at ``s``."""
        return self.profile(s, self.depth_knots)

    def canal_depth_at(self, s):
        """AP depth of the spinal canal at ``s``."""
        return self.profile(s, self.canal_knots)

    def canal_width_at(self, s):
        """Half width of the spinal canal at ``s``."""
        return self.profile(s, self.canal_width_knots)

    def width_at(self, s):
        """Half lateral width of the column at ``s``."""
        return self.profile(s, self.width_knots)

    def canal_back_at(self, s):
        """``t`` of the posterior wall of the spinal canal at ``s``."""
        return self.depth_at(s) + self.canal_gap + self.canal_depth_at(s)


@dataclass(frozen=True)
class Appearance:
    """T2-weighted-like tissue intensities and per-unit marrow features.

    Attributes:
        tone (dict[str, float]): Mean intensity per tissue.
        marrow_gain (np.ndarray): Marrow brightness per unit (0 = sacrum).
        hemangioma (np.ndarray): Whether a unit holds a hemangioma.
        hemangioma_pos (np.ndarray): Its relative ``(s, t, z)`` position.
        hemangioma_radius (np.ndarray): Its radius in mm.
        modic (np.ndarray): Endplate signal gain per unit and side.
    """

    tone: Dict[str, float]
    marrow_gain: np.ndarray
    hemangioma: np.ndarray
    hemangioma_pos: np.ndarray
    hemangioma_radius: np.ndarray
    modic: np.ndarray


def _smooth_modulation(rng: np.random.Generator,
                       amplitude: float) -> np.ndarray:
    """A factor per level around 1: a slow wave along the column plus a
    small independent jitter."""
    levels = np.arange(NUM_LEVELS)
    period = rng.uniform(5.0, 14.0)
    phase = rng.uniform(0.0, 2 * np.pi)
    wave = amplitude * rng.uniform(
        0.3, 1.0) * np.sin(2 * np.pi * levels / period + phase)
    return 1.0 + wave + rng.normal(0.0, 0.3 * amplitude, NUM_LEVELS)


def _draw_bodies(rng: np.random.Generator) -> dict:
    """Vertebral body sizes and shapes (and the case's size factor)."""
    n = NUM_LEVELS
    size = rng.uniform(0.88, 1.12)
    half_height = 0.5 * REF_BODY_HEIGHT * size * rng.uniform(
        0.94, 1.06) * _smooth_modulation(rng, 0.05)
    half_depth = 0.5 * REF_BODY_DEPTH * size * rng.uniform(
        0.92, 1.08) * _smooth_modulation(rng, 0.04)
    half_width = 0.5 * REF_BODY_WIDTH * size * _smooth_modulation(rng, 0.04)
    body_offset = rng.normal(0.0, 0.6, n)
    cavity = np.clip(rng.uniform(0.5, 1.4) + rng.normal(0.0, 0.3, n), 0.2,
                     2.0)
    waist = rng.uniform(0.0, 0.08, n)
    return dict(size=size, half_height=half_height, half_depth=half_depth,
                half_width=half_width, body_offset=body_offset,
                cavity=cavity, waist=waist)


def _draw_discs(rng: np.random.Generator, size: float) -> dict:
    """Discs: the same distribution at every level apart from the size
    trend, some degenerated."""
    n = NUM_LEVELS
    disc_height = REF_DISC_HEIGHT * size * rng.uniform(
        0.85, 1.15) * _smooth_modulation(rng, 0.06)
    degenerated = rng.random(n) < 0.15
    disc_height = np.where(degenerated,
                           disc_height * rng.uniform(0.5, 0.8, n),
                           disc_height)
    disc_hydration = np.where(degenerated, rng.uniform(0.0, 0.4, n),
                              rng.beta(6.0, 1.4, n))
    disc_bulge_ant = rng.uniform(0.3, 2.0, n)
    disc_bulge_post = rng.uniform(0.0, 1.2, n) + np.where(
        rng.random(n) < 0.1, rng.uniform(1.5, 4.5, n), 0.0)
    disc_cleft = rng.random(n) < 0.4
    return dict(disc_height=disc_height, disc_hydration=disc_hydration,
                disc_bulge_ant=disc_bulge_ant,
                disc_bulge_post=disc_bulge_post, disc_cleft=disc_cleft)


def _stack(half_height: np.ndarray, disc_height: np.ndarray) -> dict:
    """Stack discs and bodies upwards from the top of S1 (s = 0)."""
    centers, disc_lo, disc_hi = [], [], []
    s = 0.0
    for i in range(NUM_LEVELS):
        disc_lo.append(s)
        disc_hi.append(s + disc_height[i])
        centers.append(s + disc_height[i] + half_height[i])
        s += disc_height[i] + 2 * half_height[i]
    center = np.array(centers)
    return dict(center=center, disc_lo=np.array(disc_lo),
                disc_hi=np.array(disc_hi),
                top=center + half_height)  # superior endplates


def _draw_sacrum(rng: np.random.Generator, half_depth: np.ndarray,
                 half_height: np.ndarray) -> dict:
    """The sacrum, shaped differently from the mobile vertebrae."""
    return dict(
        sacrum_half_depth=half_depth[0] * rng.uniform(0.9, 1.05),
        s1_height=2 * half_height[0] * rng.uniform(0.85, 1.0),
        sacrum_length=rng.uniform(95.0, 120.0),
        sacrum_half_width=rng.uniform(38.0, 50.0),
        sacrum_cavity=rng.uniform(0.3, 1.0))


def _draw_posterior(rng: np.random.Generator, half_height: np.ndarray,
                    center: np.ndarray, disc_height: np.ndarray) -> dict:
    """Canal, posterior elements, thecal sac and conus."""
    n = NUM_LEVELS
    levels = np.arange(n)
    out = dict(
        canal_gap=rng.uniform(1.0, 2.0),  # PLL and anterior epidural
        canal_depth=rng.uniform(13.5, 18.0) * _smooth_modulation(rng, 0.05),
        canal_half_width=REF_CANAL_HALF_WIDTH * rng.uniform(0.9, 1.1),
        pedicle_width=REF_PEDICLE_WIDTH * rng.uniform(0.85, 1.15),
        lamina_thickness=rng.uniform(5.5, 8.5),
        spinous_length=REF_SPINOUS_LENGTH * rng.uniform(0.85, 1.15) *
        _smooth_modulation(rng, 0.05),
        spinous_tilt=REF_SPINOUS_TILT + np.deg2rad(rng.uniform(-5.0, 5.0)) +
        np.deg2rad(rng.normal(0.0, 2.0, n)),
        spinous_half_width=rng.uniform(2.5, 4.5),
        # half-height: tall in the lumbar spine, slender in the thoracic
        spinous_height=half_height * np.where(
            levels < 5, rng.uniform(0.5, 0.65), rng.uniform(0.38, 0.48)),
        facet_gap=rng.uniform(1.0, 2.0),
        sac_end=-rng.uniform(25.0, 45.0))  # end of the thecal sac
    out['conus'] = center[4] + rng.uniform(-1.0, 1.0) * (
        half_height[4] + disc_height[4])
    return out


def _knots(a: dict) -> dict:
    """Knots of the quantities that vary slowly along ``s``."""
    center, half_depth = a['center'], a['half_depth']
    knots = np.concatenate([[
        -a['sacrum_length'], -0.5 * a['sacrum_length'], -0.5 * a['s1_height']
    ], center, [center[-1] + 60.0]])
    hd = a['sacrum_half_depth']
    depth_knots = np.concatenate([[0.42 * hd, 0.75 * hd, hd], half_depth,
                                  [half_depth[-1]]])
    canal_depth = a['canal_depth']
    c0 = canal_depth[0]
    canal_knots = np.concatenate([[4.0, 0.55 * c0, 0.85 * c0], canal_depth,
                                  [canal_depth[-1]]])
    cw = a['canal_half_width']
    canal_width_knots = np.concatenate([[6.0, 11.0, 13.0], cw, [cw[-1]]])
    hw, sw = a['half_width'], a['sacrum_half_width']
    width_knots = np.concatenate([[0.35, 0.7, 1.0], hw / sw,
                                  [hw[-1] / sw]]) * sw
    return dict(knots=knots, depth_knots=depth_knots,
                canal_knots=canal_knots, canal_width_knots=canal_width_knots,
                width_knots=width_knots)


def sample_anatomy(rng: np.random.Generator) -> Anatomy:
    """Draw unit sizes, their stacking along ``s`` and posterior elements.

    The draws happen in a fixed order (bodies, discs, sacrum, posterior
    elements), so a seed gives the same anatomy in every version.

    Args:
        rng (np.random.Generator): Random generator.

    Returns:
        Anatomy: The drawn anatomy.
    """
    a = _draw_bodies(rng)
    size = a.pop('size')
    a.update(_draw_discs(rng, size))
    a.update(_stack(a['half_height'], a['disc_height']))
    a.update(_draw_sacrum(rng, a['half_depth'], a['half_height']))
    a.update(
        _draw_posterior(rng, a['half_height'], a['center'],
                        a['disc_height']))
    a.update(_knots(a))
    return Anatomy(**a)


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """Draw T2-weighted-like mean intensities of every tissue.

    Args:
        rng (np.random.Generator): Random generator.

    Returns:
        Appearance: Tissue tones and per-unit marrow features.
    """
    u = rng.uniform
    tone = dict(
        fat=u(620, 820),
        muscle=u(140, 240),
        marrow=u(250, 420),
        cortex=u(40, 100),
        annulus=u(250, 360),
        nucleus=u(700, 980),
        csf=u(820, 1000),
        cord=u(280, 400),
        ligament=u(50, 110),
        viscera=u(300, 480),
        fluid=u(550, 900),
        organ=u(170, 300),
        vessel=u(30, 90) if rng.random() < 0.7 else u(500, 800),
        vein=u(350, 700))
    n = NUM_LEVELS
    # per-unit appearance jitter, identically distributed at all levels
    marrow_gain = 1.0 + rng.normal(0.0, 0.04, n + 1)
    hemangioma = rng.random(n + 1) < 0.12
    hemangioma_pos = rng.uniform(-0.6, 0.6, (n + 1, 3))
    hemangioma_radius = rng.uniform(2.5, 6.0, n + 1)
    modic = np.where(
        rng.random((n + 1, 2)) < 0.08, rng.uniform(0.7, 1.5, (n + 1, 2)),
        1.0)
    return Appearance(tone, marrow_gain, hemangioma, hemangioma_pos,
                      hemangioma_radius, modic)
