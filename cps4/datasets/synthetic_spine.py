# Copyright (c) CPS4 contributors. All rights reserved.
"""Procedural generator of synthetic sagittal lumbar spine MR volumes.

The generator draws T2-weighted-like sagittal MR stacks of the lower thoracic
and lumbar spine together with a label map that follows the MRSpineSeg
convention: 10 vertebrae (S, L5 ... T9) and the 9 intervertebral discs
between them (L5/S ... T9/T10), 19 foreground classes plus background.

Every case is built from a small anatomical model expressed in millimetres:

* a smooth curved column (sacral slope, lumbar lordosis, thoracic kyphosis)
  on which vertebral bodies and discs are stacked from the sacrum upwards;
* vertebral bodies with a dark cortical rim, concave endplates and textured
  marrow; discs with a dark annulus and a bright nucleus; posterior elements
  (pedicles, laminae, articular pillars, spinous processes) that belong to
  their vertebra; the spinal canal with CSF, cord / cauda equina and
  foramina; paraspinal muscles, fat, vessels and abdominal viscera around;
* acquisition effects: slice positions, partial volume blur, a smooth
  multiplicative bias field with a posterior surface-coil profile and
  Rician noise.

All vertebrae share one appearance distribution and so do all discs, so the
identity of a unit can only be inferred from its position counted from the
sacrum. The field of view, unit sizes, curvature, contrast, number of
sagittal slices and lateral position vary per case, and the top visible
unit ranges from T11 to T9 so that some classes are absent in some cases.

Array convention: volumes are ``(H, W, S)`` arrays with rows running from
superior to inferior, columns from anterior to posterior and the sagittal
slices along the last axis (patient left to right). Spacing is reported as
``(row, column, slice)`` millimetres. The in-plane spacing is derived from
the anatomical field of view (about 270-380 mm tall), so it scales with the
requested image size: about 1.4-2 mm for 192 rows, 0.5-0.75 mm for 512 rows.

Example:
    >>> from cps4.datasets.synthetic_spine import generate_case
    >>> image, label, spacing = generate_case(0)
    >>> image.shape[:2], label.max() <= 19
    ((192, 192), True)
"""
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from cps4.utils.atomic_file import atomic_file
from cps4.utils.fileio import write_json_atomic

__all__ = [
    'SPINE_CLASSES', 'SPINE_PALETTE', 'generate_case',
    'write_synthetic_dataset'
]

SPINE_CLASSES: Tuple[str, ...] = ('background', 'S', 'L5', 'L4', 'L3', 'L2',
                                  'L1', 'T12', 'T11', 'T10', 'T9', 'L5/S',
                                  'L4/L5', 'L3/L4', 'L2/L3', 'L1/L2', 'T12/L1',
                                  'T11/T12', 'T10/T11', 'T9/T10')

SPINE_PALETTE: List[List[int]] = [[0, 0, 0], [230, 25, 75], [60, 180, 75],
                                  [255, 225, 25], [0, 130,
                                                   200], [245, 130, 48],
                                  [145, 30, 180], [70, 240, 240],
                                  [240, 50, 230], [210, 245, 60],
                                  [250, 190, 212], [0, 128, 128],
                                  [220, 190, 255], [170, 110, 40],
                                  [255, 250, 200], [128, 0,
                                                    0], [170, 255, 195],
                                  [128, 128, 0], [255, 215, 180], [0, 0, 128]]

#: Version of the generator recorded in ``dataset.json``. Bump it whenever
#: the generated data changes for a given seed.
GENERATOR_VERSION = 1

SACRUM_LABEL = 1
NUM_LABELLED_LEVELS = 9  # labelled mobile vertebrae L5 ... T9
# Two more unlabelled levels (T8, T7) are modelled so that anatomy continues
# above T9 when the field of view reaches that high, as in real scans.
NUM_LEVELS = 11

# Reference anatomy in millimetres, index 0 = L5 ... 8 = T9, 9 = T8,
# 10 = T7. Discs are the ones directly below each vertebra (0 = L5/S ...
# 8 = T9/T10, 9 = T8/T9, 10 = T7/T8).
_REF_BODY_HEIGHT = np.array(
    [27.0, 28.0, 28.5, 28.0, 27.0, 25.0, 23.5, 22.0, 21.0, 20.5, 20.0])
_REF_BODY_DEPTH = np.array(
    [35.0, 35.5, 35.0, 34.0, 32.5, 31.0, 29.5, 28.5, 27.5, 27.0, 26.5])
_REF_BODY_WIDTH = np.array(
    [50.0, 49.0, 47.0, 45.0, 43.0, 40.0, 37.5, 35.5, 34.0, 33.0, 32.0])
_REF_DISC_HEIGHT = np.array(
    [10.5, 11.5, 11.0, 10.5, 9.5, 7.5, 6.5, 6.0, 5.5, 5.0, 5.0])
_REF_CANAL_HALF_WIDTH = np.array(
    [12.0, 11.5, 11.0, 10.5, 10.5, 9.5, 9.0, 8.5, 8.5, 8.5, 8.5])
_REF_PEDICLE_WIDTH = np.array(
    [9.0, 8.5, 8.0, 7.5, 7.0, 6.5, 6.0, 6.0, 6.0, 6.0, 6.0])
_REF_SPINOUS_LENGTH = np.array(
    [24.0, 28.0, 30.0, 30.0, 29.0, 28.0, 30.0, 32.0, 34.0, 35.0, 36.0])
_REF_SPINOUS_TILT = np.deg2rad(
    [8.0, 5.0, 5.0, 8.0, 12.0, 20.0, 28.0, 35.0, 40.0, 45.0, 50.0])

_CENTERLINE_STEP = 0.5  # mm


def vertebra_label(level: int) -> int:
    """Label of the mobile vertebra ``level`` (0 = L5 ... 8 = T9, else 0)."""
    return level + 2 if level < NUM_LABELLED_LEVELS else 0


def disc_label(level: int) -> int:
    """Label of the disc below vertebra ``level`` (0 = L5/S, 0 above T9)."""
    return level + 11 if level < NUM_LABELLED_LEVELS else 0


def _as_generator(
    rng_or_seed: Union[int, Sequence[int], np.random.Generator]
) -> np.random.Generator:
    """Return ``rng_or_seed`` itself or a generator seeded with it."""
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    return np.random.default_rng(rng_or_seed)


def _smooth_noise(rng: np.random.Generator, shape: Tuple[int, ...],
                  sigma: Sequence[float]) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field.

    Wide kernels are applied on a coarser grid that is then linearly
    upsampled, which keeps the cost low for large volumes.

    Args:
        rng (np.random.Generator): Random generator.
        shape (tuple[int]): Output shape.
        sigma (Sequence[float]): Smoothing standard deviation per axis, in
            voxels.

    Returns:
        np.ndarray: float32 random field of the given shape.
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    factor = np.maximum(1, np.floor(sigma / 2.0)).astype(int)
    coarse = tuple(
        int(np.ceil(n / f)) + (2 if f > 1 else 0)
        for n, f in zip(shape, factor))
    field = rng.standard_normal(coarse).astype(np.float32)
    field = ndimage.gaussian_filter(
        field, sigma / factor, mode='wrap', truncate=2.5)
    if any(c != n for c, n in zip(coarse, shape)):
        field = ndimage.zoom(
            field, [n / c for n, c in zip(shape, coarse)], order=1)
        field = field[tuple(slice(0, n) for n in shape)]
    field -= field.mean()
    field /= field.std() + 1e-6
    return field


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class _CaseBuilder:
    """Draws one case: anatomy, geometry, tissue intensities and labels.

    The builder works in a curvilinear frame attached to the column: ``s``
    is the arc length along the column centreline (0 at the superior
    endplate of S1, positive upwards), ``t`` the signed distance from the
    centreline (positive posterior) and ``zr`` the lateral distance of a
    voxel from the mid-sagittal plane of the spine.

    Args:
        rng (np.random.Generator): Random generator, consumed in a fixed
            order so that a seed fully determines the case.
        image_size (tuple[int, int]): ``(H, W)`` in-plane size.
        num_slices (int, optional): Number of sagittal slices. Random in
            ``[9, 17]`` when None.
        slice_spacing (float, optional): Slice spacing in mm. Random in
            ``[3.0, 4.5]`` when None.
        label_posterior_elements (bool): Whether pedicles, laminae and
            processes carry the label of their vertebra (as in MRSpineSeg)
            or are left as background.
    """

    def __init__(self,
                 rng: np.random.Generator,
                 image_size: Tuple[int, int],
                 num_slices: Optional[int] = None,
                 slice_spacing: Optional[float] = None,
                 label_posterior_elements: bool = True):
        self.rng = rng
        self.height, self.width = (int(v) for v in image_size)
        if self.height < 16 or self.width < 16:
            raise ValueError(f'image_size too small: {image_size}')
        if num_slices is None:
            num_slices = int(rng.integers(9, 18))
        if num_slices < 1:
            raise ValueError(f'num_slices must be positive, got {num_slices}')
        self.num_slices = int(num_slices)
        if slice_spacing is None:
            slice_spacing = float(rng.uniform(3.0, 4.5))
        self.slice_spacing = float(slice_spacing)
        self.label_posterior = label_posterior_elements

    # ------------------------------------------------------------------
    # Anatomy
    # ------------------------------------------------------------------
    def sample_anatomy(self) -> None:
        """Draw unit sizes, their stacking along ``s`` and tissue contrast."""
        rng = self.rng
        n = NUM_LEVELS
        levels = np.arange(n)

        def smooth_modulation(amplitude):
            # slowly varying along the column + small independent jitter
            period = rng.uniform(5.0, 14.0)
            phase = rng.uniform(0.0, 2 * np.pi)
            wave = amplitude * rng.uniform(
                0.3, 1.0) * np.sin(2 * np.pi * levels / period + phase)
            return 1.0 + wave + rng.normal(0.0, 0.3 * amplitude, n)

        size = rng.uniform(0.88, 1.12)
        self.half_height = 0.5 * _REF_BODY_HEIGHT * size * rng.uniform(
            0.94, 1.06) * smooth_modulation(0.05)
        self.half_depth = 0.5 * _REF_BODY_DEPTH * size * rng.uniform(
            0.92, 1.08) * smooth_modulation(0.04)
        self.half_width = 0.5 * _REF_BODY_WIDTH * size * smooth_modulation(
            0.04)
        self.body_offset = rng.normal(0.0, 0.6, n)
        self.cavity = np.clip(
            rng.uniform(0.5, 1.4) + rng.normal(0.0, 0.3, n), 0.2, 2.0)
        self.waist = rng.uniform(0.0, 0.08, n)

        # discs: same distribution at every level apart from the size trend
        disc_height = _REF_DISC_HEIGHT * size * rng.uniform(
            0.85, 1.15) * smooth_modulation(0.06)
        degenerated = rng.random(n) < 0.15
        disc_height = np.where(degenerated,
                               disc_height * rng.uniform(0.5, 0.8, n),
                               disc_height)
        self.disc_height = disc_height
        self.disc_hydration = np.where(degenerated, rng.uniform(0.0, 0.4, n),
                                       rng.beta(6.0, 1.4, n))
        self.disc_bulge_ant = rng.uniform(0.3, 2.0, n)
        self.disc_bulge_post = rng.uniform(0.0, 1.2, n) + np.where(
            rng.random(n) < 0.1, rng.uniform(1.5, 4.5, n), 0.0)
        self.disc_cleft = rng.random(n) < 0.4

        # stack discs and bodies upwards from the top of S1 (s = 0)
        centers, disc_lo, disc_hi = [], [], []
        s = 0.0
        for i in range(n):
            disc_lo.append(s)
            disc_hi.append(s + disc_height[i])
            centers.append(s + disc_height[i] + self.half_height[i])
            s += disc_height[i] + 2 * self.half_height[i]
        self.center = np.array(centers)
        self.disc_lo = np.array(disc_lo)
        self.disc_hi = np.array(disc_hi)
        self.top = self.center + self.half_height  # superior endplates

        # sacrum (shaped differently from the mobile vertebrae)
        self.sacrum_half_depth = self.half_depth[0] * rng.uniform(0.9, 1.05)
        self.s1_height = 2 * self.half_height[0] * rng.uniform(0.85, 1.0)
        self.sacrum_length = rng.uniform(95.0, 120.0)
        self.sacrum_half_width = rng.uniform(38.0, 50.0)
        self.sacrum_cavity = rng.uniform(0.3, 1.0)

        # canal, posterior elements
        self.canal_gap = rng.uniform(1.0, 2.0)  # PLL and anterior epidural
        self.canal_depth = rng.uniform(13.5, 18.0) * smooth_modulation(0.05)
        self.canal_half_width = _REF_CANAL_HALF_WIDTH * rng.uniform(0.9, 1.1)
        self.pedicle_width = _REF_PEDICLE_WIDTH * rng.uniform(0.85, 1.15)
        self.lamina_thickness = rng.uniform(5.5, 8.5)
        self.spinous_length = _REF_SPINOUS_LENGTH * rng.uniform(
            0.85, 1.15) * smooth_modulation(0.05)
        self.spinous_tilt = _REF_SPINOUS_TILT + np.deg2rad(
            rng.uniform(-5.0, 5.0)) + np.deg2rad(rng.normal(0.0, 2.0, n))
        self.spinous_half_width = rng.uniform(2.5, 4.5)
        # half-height: tall in the lumbar spine, slender in the thoracic
        self.spinous_height = self.half_height * np.where(
            levels < 5, rng.uniform(0.5, 0.65), rng.uniform(0.38, 0.48))
        self.facet_gap = rng.uniform(1.0, 2.0)
        self.sac_end = -rng.uniform(25.0, 45.0)  # end of the thecal sac
        self.conus = self.center[4] + rng.uniform(-1.0, 1.0) * (
            self.half_height[4] + self.disc_height[4])

        # knots describing slowly varying quantities along s
        s_knots = np.concatenate([[
            -self.sacrum_length, -0.5 * self.sacrum_length,
            -0.5 * self.s1_height
        ], self.center, [self.center[-1] + 60.0]])
        self._knots = s_knots
        hd = self.sacrum_half_depth
        self._depth_knots = np.concatenate([[0.42 * hd, 0.75 * hd, hd],
                                            self.half_depth,
                                            [self.half_depth[-1]]])
        c0 = self.canal_depth[0]
        self._canal_knots = np.concatenate([[4.0, 0.55 * c0, 0.85 * c0],
                                            self.canal_depth,
                                            [self.canal_depth[-1]]])
        cw = self.canal_half_width
        self._canal_width_knots = np.concatenate([[6.0, 11.0, 13.0], cw,
                                                  [cw[-1]]])
        hw = self.half_width
        self._width_knots = np.concatenate(
            [[0.35, 0.7, 1.0], hw / self.sacrum_half_width,
             [hw[-1] / self.sacrum_half_width]]) * self.sacrum_half_width
        self.sample_contrast()

    def sample_contrast(self) -> None:
        """Draw T2-weighted-like mean intensities of every tissue."""
        rng = self.rng
        u = rng.uniform
        self.tone = dict(
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
        self.marrow_gain = 1.0 + rng.normal(0.0, 0.04, n + 1)
        self.hemangioma = rng.random(n + 1) < 0.12
        self.hemangioma_pos = rng.uniform(-0.6, 0.6, (n + 1, 3))
        self.hemangioma_radius = rng.uniform(2.5, 6.0, n + 1)
        self.modic = np.where(
            rng.random((n + 1, 2)) < 0.08, rng.uniform(0.7, 1.5, (n + 1, 2)),
            1.0)

    # ------------------------------------------------------------------
    # Centreline, field of view and voxel coordinates
    # ------------------------------------------------------------------
    def build_centerline(self) -> None:
        """Integrate the curved column centreline in the sagittal plane."""
        rng = self.rng
        lumbar_end = self.top[4]  # superior endplate of L1
        theta0 = np.deg2rad(rng.uniform(26.0, 44.0))  # at the S1 endplate
        lordosis = np.deg2rad(rng.uniform(32.0, 62.0))
        exponent = rng.uniform(1.3, 2.2)
        kyphosis_rate = np.deg2rad(rng.uniform(0.03, 0.12))  # per mm
        sacral_rate = np.deg2rad(rng.uniform(0.25, 0.45))  # per mm
        posture = np.deg2rad(rng.uniform(-6.0, 6.0))

        step = _CENTERLINE_STEP
        s = np.arange(-(self.sacrum_length + 60.0), self.top[-1] + 80.0, step)
        u = np.clip(s / lumbar_end, 0.0, 1.0)
        theta = theta0 - lordosis * (1.0 - (1.0 - u)**exponent)
        theta -= kyphosis_rate * np.clip(s - lumbar_end, 0.0, None)
        theta += sacral_rate * np.clip(-s, 0.0, None)
        theta = np.clip(theta + posture, np.deg2rad(-60), np.deg2rad(80))
        # x: anterior -> posterior, y: inferior -> superior (mm)
        x = np.cumsum(-np.sin(theta)) * step
        y = np.cumsum(np.cos(theta)) * step
        origin = np.searchsorted(s, 0.0)
        self.cl_s, self.cl_theta = s, theta
        self.cl_x, self.cl_y = x - x[origin], y - y[origin]

    def _profile(self, s: np.ndarray, knots: np.ndarray) -> np.ndarray:
        return np.interp(s, self._knots, knots)

    def depth_at(self, s):
        """Half AP depth of the column (bodies / sacrum) at ``s``."""
        return self._profile(s, self._depth_knots)

    def canal_depth_at(self, s):
        return self._profile(s, self._canal_knots)

    def canal_width_at(self, s):
        return self._profile(s, self._canal_width_knots)

    def width_at(self, s):
        return self._profile(s, self._width_knots)

    def canal_back_at(self, s):
        """``t`` of the posterior wall of the spinal canal at ``s``."""
        return self.depth_at(s) + self.canal_gap + self.canal_depth_at(s)

    def place_field_of_view(self) -> None:
        """Choose the visible range, pixel spacing and in-plane position."""
        rng = self.rng
        # top edge: from just above T12 (T11 partly cut) to above T9
        self.s_top = rng.uniform(self.top[5] + 2.0, self.top[8] + 6.0)
        sacrum_visible = rng.uniform(35.0, 75.0)
        s, x, y = self.cl_s, self.cl_x, self.cl_y
        y_top = np.interp(self.s_top, s, y)
        y_bottom = np.interp(-sacrum_visible, s, y)
        spacing = (y_top - y_bottom) / self.height
        self.spacing = (float(spacing), float(spacing),
                        float(self.slice_spacing))

        # posterior skin: spinous tips + a muscle cover + subcutaneous fat
        tip = self.canal_back_at(self.center) + self.lamina_thickness + \
            self.spinous_length * np.cos(self.spinous_tilt)
        self.back_cover = rng.uniform(3.0, 12.0)
        self.fat_thickness = rng.uniform(6.0, 35.0)
        sacral_cover = rng.uniform(12.0, 28.0)
        self._back_knots = np.concatenate([[
            self.canal_back_at(-self.sacrum_length) + sacral_cover,
            self.canal_back_at(-0.5 * self.sacrum_length) + sacral_cover,
            tip[0] - 4.0
        ], tip, [tip[-1]]]) + self.back_cover
        self.glute_size = rng.uniform(10.0, 45.0)
        self.front_skin = -rng.uniform(150.0, 260.0)

        visible = (s >= -sacrum_visible) & (s <= self.s_top)
        cos = np.cos(self.cl_theta[visible])
        back = self._profile(s[visible], self._back_knots) + \
            self.fat_thickness
        skin_x = np.max(x[visible] + back * cos)
        front_x = np.min(x[visible] - 45.0 * cos)
        fov_x = self.width * spacing
        left = skin_x - fov_x * rng.uniform(0.86, 1.0)
        left = min(left, front_x - 0.1 * fov_x)
        self.x_left, self.y_top = left, y_top

    def compute_coordinates(self) -> None:
        """Map every pixel to ``(s, t)`` and every voxel to ``zr``."""
        rng = self.rng
        sy, sx, sz = self.spacing
        rows = self.y_top - (np.arange(self.height) + 0.5) * sy
        cols = self.x_left + (np.arange(self.width) + 0.5) * sx
        px = np.broadcast_to(cols[None, :], (self.height, self.width)).ravel()
        py = np.broadcast_to(rows[:, None], (self.height, self.width)).ravel()
        tree = cKDTree(np.stack([self.cl_x, self.cl_y], axis=1))
        _, nearest = tree.query(np.stack([px, py], axis=1))
        dx = px - self.cl_x[nearest]
        dy = py - self.cl_y[nearest]
        theta = self.cl_theta[nearest]
        self.s = (self.cl_s[nearest] - dx * np.sin(theta) +
                  dy * np.cos(theta)).astype(np.float32)
        self.t = (dx * np.cos(theta) + dy * np.sin(theta)).astype(np.float32)

        # lateral coordinate relative to a slightly oblique / bent midplane
        z = (np.arange(self.num_slices) - 0.5 * (self.num_slices - 1)) * sz
        offset = rng.uniform(-1.0, 1.0) * sz
        tilt = rng.uniform(-0.03, 0.03)
        bend = rng.uniform(-1.2e-4, 1.2e-4)
        s_ref = 0.5 * self.s_top
        mid = offset + tilt * (self.s - s_ref) + bend * (self.s - s_ref)**2
        self.zr = (z[None, :] - mid[:, None]).astype(np.float32)
        self.z = z

    # ------------------------------------------------------------------
    # Rendering
    # ------------------------------------------------------------------
    def make_textures(self) -> None:
        """Random fields used to texture the tissues."""
        rng = self.rng
        sy, _, sz = self.spacing
        shape = (self.height, self.width, self.num_slices)
        n = self.height * self.width

        def field(sigma_mm_inplane, sigma_mm_row=None, sigma_mm_slice=4.0):
            row = sigma_mm_row if sigma_mm_row is not None else \
                sigma_mm_inplane
            f = _smooth_noise(
                rng, shape,
                (row / sy, sigma_mm_inplane / sy, sigma_mm_slice / sz))
            return f.reshape(n, self.num_slices)

        self.tex_fine = field(1.2, sigma_mm_slice=2.0)
        self.tex_mid = field(4.0)
        self.tex_coarse = field(12.0, sigma_mm_slice=8.0)
        self.tex_fiber = field(1.2, sigma_mm_row=9.0, sigma_mm_slice=3.0)

    def select(self, s_lo: float, s_hi: float, t_lo: float,
               t_hi: float) -> np.ndarray:
        """Flat indices of the pixels inside an ``(s, t)`` box."""
        return np.flatnonzero((self.s >= s_lo) & (self.s <= s_hi)
                              & (self.t >= t_lo) & (self.t <= t_hi))

    def paint(self,
              idx: np.ndarray,
              mask: np.ndarray,
              value,
              label: Optional[int] = None) -> None:
        """Write ``value`` (and ``label``) where ``mask`` holds in ``idx``."""
        if idx.size == 0 or not mask.any():
            return
        if np.ndim(value) == 0:
            value = np.float32(value)
        self.image[idx] = np.where(mask, value, self.image[idx])
        if label is not None:
            self.label[idx] = np.where(mask, np.uint8(label), self.label[idx])

    def render_background(self) -> None:
        """Abdomen, retroperitoneum, vessels, muscles, fat and air."""
        rng = self.rng
        tone = self.tone
        s, t, zr = self.s[:, None], self.t[:, None], self.zr
        depth = self.depth_at(s)
        canal_back = self.canal_back_at(s)
        az = np.abs(zr)

        # abdominal viscera: bowel loops with fluid and gas, solid organs
        image = tone['viscera'] * (1.0 + 0.12 * self.tex_mid)
        fluid = _sigmoid((self.tex_coarse - rng.uniform(0.2, 0.8)) * 5.0)
        image += (tone['fluid'] - image) * fluid
        gas = self.tex_fine * 0.3 + self.tex_coarse < -rng.uniform(1.3, 1.9)
        image = np.where(gas, 20.0, image)
        organ_start = self.center[5] + rng.uniform(-25.0, 15.0)
        organ = (s + 12.0 * self.tex_coarse > organ_start)
        image = np.where(organ, tone['organ'] * (1.0 + 0.05 * self.tex_mid),
                         image)
        self.image = image.astype(np.float32)
        self.label = np.zeros(self.image.shape, np.uint8)
        all_idx = np.arange(self.s.size)

        # anterior abdominal wall and air in front of it
        wall_fat = rng.uniform(5.0, 30.0)
        wall_muscle = rng.uniform(8.0, 13.0)
        front = self.front_skin
        self.paint(all_idx, t < front + wall_fat + wall_muscle,
                   tone['muscle'] * (1 + 0.08 * self.tex_fiber))
        self.paint(all_idx, t < front + wall_fat,
                   tone['fat'] * (1 + 0.04 * self.tex_mid))
        self.paint(all_idx, t < front, 0.0)

        # retroperitoneal fat and great vessels in front of the column
        rp = rng.uniform(4.0, 14.0)
        prevertebral = (t < -depth + 2.0) & (
            t > -depth - rp - 5.0 * (1 + self.tex_coarse))
        self.paint(all_idx, prevertebral,
                   tone['fat'] * (1 + 0.05 * self.tex_mid))
        # ligaments and periosteum wrapping the column
        self.paint(all_idx, (t > -depth - 1.5) & (t < canal_back) &
                   (az < 0.6 * self.width_at(s)),
                   tone['ligament'] * (1.3 + 0.2 * self.tex_mid))
        bifurcation = self.center[1] + rng.uniform(-10.0, 10.0)
        for name, z0, radius, flat in (('vessel', -rng.uniform(8.0, 22.0),
                                        rng.uniform(8.0, 11.5), 1.0),
                                       ('vein', rng.uniform(8.0, 24.0),
                                        rng.uniform(9.0, 13.0), 0.7)):
            below = np.clip(bifurcation - s, 0.0, None)
            zc = z0 + np.sign(z0) * 0.5 * below
            rad = np.where(below > 0, 0.75 * radius, radius)
            tc = -depth - 2.0 - flat * rad
            inside = ((t - tc) / (flat * rad))**2 + ((zr - zc) / rad)**2 < 1
            self.paint(all_idx, inside, tone[name] * (1 + 0.05 * self.tex_mid))

        # psoas and other muscles lateral to the column
        psoas = np.clip((self.top[4] - s) / (self.top[4] + 1e-3), 0.0, 1.0)
        psoas_depth = 3.0 + psoas * rng.uniform(15.0, 30.0)
        lateral = (az > 0.55 * self.width_at(s)) & (t > -depth - psoas_depth) \
            & (t < canal_back)
        self.paint(all_idx, lateral,
                   tone['muscle'] * (1 + 0.1 * self.tex_fiber))

        # paraspinal muscles with fatty streaks, subcutaneous fat, air
        back = self._profile(s, self._back_knots)
        # buttocks bulge out next to the midline below the lumbar spine
        back = back + self.glute_size * np.clip((az - 8.0) / 25.0, 0, 1) * \
            np.exp(-((s + 70.0) / 45.0)**2)
        fat_edge = back + self.fat_thickness * (1 + 0.15 * self.tex_coarse)
        streak = np.clip(self.tex_fiber - rng.uniform(1.2, 2.2), 0.0, 1.0)
        muscle = tone['muscle'] * (1 + 0.1 * self.tex_fiber) + \
            (tone['fat'] - tone['muscle']) * streak
        self.paint(all_idx, (t > canal_back - 2.0) & (t < back), muscle)
        self.paint(all_idx, (t >= back) & (t < fat_edge),
                   tone['fat'] * (1 + 0.04 * self.tex_mid))
        self.paint(all_idx, t >= fat_edge, 0.0)

    def _subset(self, idx: np.ndarray):
        return self.s[idx, None], self.t[idx, None], self.zr[idx]

    def render_posterior_elements(self) -> None:
        """Foramina, ligaments, pedicles, laminae, pillars and processes."""
        tone = self.tone
        label_of = (lambda lab: lab) if self.label_posterior else \
            (lambda lab: 0)

        # neural foramina (fat) and ligamentum flavum over the whole column
        idx = self.select(-self.sacrum_length - 10, self.s_top + 40, 0.0,
                          150.0)
        s, t, zr = self._subset(idx)
        az = np.abs(zr)
        depth, cw = self.depth_at(s), self.canal_width_at(s)
        back = self.canal_back_at(s)
        pw = np.interp(s, self.center, self.pedicle_width)
        foramen = (az > cw - 1.0) & (az < cw + pw + 2.0) & (t > depth) & \
            (t < back)
        self.paint(idx, foramen,
                   0.85 * tone['fat'] * (1 + 0.06 * self.tex_mid[idx]))
        flavum = (az < cw + 2.0) & (t > back - 1.0) & (t < back + 3.0)
        self.paint(idx, flavum, tone['ligament'])
        interspinous = (az < self.spinous_half_width + 1.0) & (t > back) & (
            t < back + 45.0)
        self.paint(idx, interspinous,
                   tone['ligament'] * (1.5 + 0.3 * self.tex_fiber[idx]))

        for i in range(NUM_LEVELS):
            self._render_vertebra_arch(i, label_of(vertebra_label(i)))

    def _bone(self, idx, outer, inner, unit, label):
        """Paint cortical shell ``outer`` and textured marrow ``inner``."""
        marrow = self.tone['marrow'] * self.marrow_gain[unit] * (
            1.0 + 0.1 * self.tex_fine[idx] + 0.08 * self.tex_mid[idx])
        self.paint(idx, outer, self.tone['cortex'], label)
        self.paint(idx, inner & outer, marrow)

    def _render_vertebra_arch(self, i: int, label: int) -> None:
        hh = self.half_height[i]
        sc = self.center[i]
        below = 0.5 * (self.disc_lo[i] + self.disc_hi[i])
        above = 0.5 * (self.disc_lo[i + 1] + self.disc_hi[i + 1]) \
            if i + 1 < NUM_LEVELS else sc + hh + 4.0
        idx = self.select(below - 30.0, above + 5.0, 0.0, 130.0)
        if idx.size == 0:
            return
        s, t, zr = self._subset(idx)
        az = np.abs(zr)
        depth = self.depth_at(s)
        back = self.canal_back_at(s)
        cw = self.canal_width_at(s)
        pw = self.pedicle_width[i]
        lt = self.lamina_thickness
        rim = 1.2
        unit = i + 1

        # articular pillars, split at the facet joints (disc mid levels)
        q_lat = (az - (cw + 0.5 * pw + 2.0)) / (0.5 * pw + 4.0)
        q_t = (t - (back + 2.5)) / 7.5
        lo, hi = below + 0.5 * self.facet_gap, above - 0.5 * self.facet_gap
        q_s = (s - 0.5 * (lo + hi)) / (0.5 * (hi - lo))
        f = q_lat**4 + q_t**4 + q_s**6
        self._bone(idx, f <= 1.0, f <= 0.6, unit, label)

        # pedicles: attach to the upper half of the body
        ped_s = (s - (sc + 0.3 * hh)) / (0.36 * hh)
        t0, t1 = 0.5 * self.half_depth[i], back + 2.0
        ped_t = (t - 0.5 * (t0 + t1)) / (0.5 * (t1 - t0))
        ped_z = (az - (cw + 0.5 * pw - 0.5)) / (0.5 * pw + 0.5)
        f = np.abs(ped_s)**3 + np.abs(ped_t)**4 + np.abs(ped_z)**3
        self._bone(idx, f <= 1.0, f <= 0.55, unit, label)

        # lamina: curves forward laterally
        sa = sc - 0.15 * hh
        lam_t = back + 0.5 * lt - 4.0 * np.clip(az / (cw + pw), 0, 1)**2
        f = np.abs((s - sa) / (0.45 * hh))**3 + \
            np.abs((t - lam_t) / (0.5 * lt + 0.5))**3
        lam = (f <= 1.0) & (az <= cw + pw)
        self._bone(idx, lam, (f <= 0.5) & (az <= cw + pw - rim), unit, label)

        # spinous process, inclined downwards (more in the thoracic spine)
        tilt = self.spinous_tilt[i]
        length = self.spinous_length[i]
        base = back + 0.5 * lt
        a = (t - base) * np.cos(tilt) - (s - sa) * np.sin(tilt)
        b = (t - base) * np.sin(tilt) + (s - sa) * np.cos(tilt)
        a_rel = np.clip(a / length, 0.0, 1.0)
        half = self.spinous_height[i] * (1.0 - 0.25 * a_rel)
        f_a = np.clip((a - 0.5 * length) / (0.5 * length), 0.0, None)**4
        f = f_a + np.abs(b / half)**4 + \
            np.abs(zr / self.spinous_half_width)**4
        outer = (f <= 1.0) & (a >= 0.0)
        self._bone(idx, outer, outer & (f <= 0.5), unit, label)

        # exiting nerve root in the foramen below the pedicle
        root = ((s - (sc - 0.35 * hh)) / 3.2)**2 + \
            ((t - (depth + self.canal_gap + 0.35 * self.canal_depth[i])) /
             3.0)**2 + ((az - (cw + 0.5 * pw)) / 4.0)**2 < 1.0
        self.paint(idx, root, self.tone['cord'], 0)

    def render_canal(self) -> None:
        """Spinal canal: CSF, cord, cauda equina and epidural tissues."""
        tone = self.tone
        idx = self.select(-self.sacrum_length - 10, self.s_top + 40, 0.0, 80.0)
        s, t, zr = self._subset(idx)
        depth = self.depth_at(s)
        cw = self.canal_width_at(s)
        c = self.canal_depth_at(s)
        lateral = np.clip(1.0 - (zr / cw)**2, 0.0, 1.0)
        front = depth + self.canal_gap
        back = front + c * np.sqrt(lateral)
        canal = (t > depth) & (t < back) & (lateral > 0)
        self.paint(idx, canal, tone['fat'] * (1 + 0.05 * self.tex_mid[idx]), 0)
        self.paint(idx, canal & (t < front), tone['ligament'])

        # thecal sac with CSF down to the upper sacrum
        sac_back = back - 1.5 - 1.0 * (s < self.center[2])
        sac = canal & (t >= front) & (t < sac_back) & (np.abs(zr)
                                                       < 0.9 * cw) & (
                                                           s > self.sac_end)
        csf = tone['csf'] * (1 + 0.03 * self.tex_mid[idx])
        self.paint(idx, sac, csf)
        # cord above the conus, cauda equina roots lying dorsally below it
        taper = np.clip((s - self.conus) / 15.0, 0.0, 1.0)**0.5
        tc = front + 0.45 * c
        cord = ((t - tc) / (4.2 * taper + 1e-3))**2 + \
            (zr / (5.0 * taper + 1e-3))**2 < 1.0
        self.paint(idx, sac & cord, tone['cord'])
        roots = sac & (s < self.conus + 5.0) & (t > front + 0.45 * c) & (
            self.tex_fiber[idx] > 0.4)
        self.paint(idx, roots, 0.5 * (tone['cord'] + tone['csf']))

    def render_discs(self) -> None:
        """Intervertebral discs with annulus and nucleus."""
        tone = self.tone
        rng = self.rng
        cleft_tone = rng.uniform(0.45, 0.75)
        for i in range(NUM_LEVELS):
            lo, hi = self.disc_lo[i], self.disc_hi[i]
            idx = self.select(lo - 8.0, hi + 8.0, -60.0, 60.0)
            if idx.size == 0:
                continue
            s, t, zr = self._subset(idx)
            # lower and upper endplates (sacrum or the vertebra below)
            if i == 0:
                d_lo, cav_lo, w_lo = self.sacrum_half_depth, \
                    self.sacrum_cavity, self.sacrum_half_width
            else:
                d_lo, cav_lo, w_lo = self.half_depth[i - 1], \
                    self.cavity[i - 1], self.half_width[i - 1]
            d_hi, cav_hi, w_hi = self.half_depth[i], self.cavity[i], \
                self.half_width[i]
            dmean = 0.5 * (d_lo + min(d_hi, d_lo * 1.1))
            w = min(w_lo, w_hi) + 1.0
            q = np.abs(zr) / w
            lat = np.clip(1.0 - q**2.5, 0.0, 1.0)**0.4
            # follow the concave endplates; bodies painted later win
            floor = lo - 0.3 - cav_lo * np.clip(1.0 - (t / d_lo)**2, 0, 1)
            ceil = hi + 0.3 + cav_hi * np.clip(1.0 - (t / d_hi)**2, 0, 1)
            height = max(hi - lo, 1.0)
            mid = np.clip((s - 0.5 * (lo + hi)) / (0.5 * height), -1.0, 1.0)
            bulge = 1.0 - mid**2
            ant = (dmean + self.disc_bulge_ant[i] * bulge) * lat
            post = (dmean + self.disc_bulge_post[i] * bulge) * lat
            disc = (s >= floor) & (s <= ceil) & (t > -ant) & (t < post) & (
                q < 1.0)
            self.paint(idx, disc,
                       tone['annulus'] * (1 + 0.06 * self.tex_mid[idx]),
                       disc_label(i))
            # nucleus: bright, smoothly fading into the annulus
            hyd = self.disc_hydration[i]
            nucleus_tone = tone['annulus'] + hyd * (
                tone['nucleus'] - tone['annulus'])
            rn = ((s - 0.5 * (lo + hi)) / (0.5 * height + 1.0))**2 + \
                ((t - 0.08 * dmean) / (0.72 * dmean))**2 + (q / 0.8)**2
            weight = np.clip((1.0 - rn) / 0.35, 0.0, 1.0)
            value = tone['annulus'] + (nucleus_tone - tone['annulus']) * \
                weight * (1 + 0.05 * self.tex_fine[idx])
            self.paint(idx, disc & (rn < 1.0), value)
            if self.disc_cleft[i] and height > 6.0:
                cleft = disc & (np.abs(s - 0.5 * (lo + hi)) < 0.6) & (
                    np.abs(t) < 0.5 * dmean)
                self.paint(idx, cleft, cleft_tone * nucleus_tone)

    def render_bodies(self) -> None:
        """Vertebral bodies of L5 ... T9."""
        p = 6.0
        for i in range(NUM_LEVELS):
            hh, hd, hw = self.half_height[i], self.half_depth[i], \
                self.half_width[i]
            sc = self.center[i]
            idx = self.select(sc - hh - 3.0, sc + hh + 3.0, -hd - 6.0,
                              hd + 6.0)
            if idx.size == 0:
                continue
            s, t, zr = self._subset(idx)
            ds, dt = s - sc, t - self.body_offset[i]
            q = np.abs(zr) / hw
            depth = hd * np.clip(1.0 - q**2.5, 0.0, 1.0)**0.4 + 1e-3
            height = hh * (1.0 - 0.08 * q**2)
            height = height - self.cavity[i] * np.clip(1.0 -
                                                       (dt / hd)**2, 0.0, 1.0)
            waist = 1.0 - self.waist[i] * np.clip(1.0 - (ds / hh)**2, 0, 1)
            depth = np.where(dt < 0, depth * waist, depth)
            outer = (np.abs(ds) / height)**p + (np.abs(dt) / depth)**p <= 1.0
            rim = 1.2
            inner = (np.abs(ds) / np.maximum(height - rim, 1e-3))**p + \
                (np.abs(dt) / np.maximum(depth - rim, 1e-3))**p <= 1.0
            outer &= q < 1.0
            self._bone(idx, outer, inner, i + 1, vertebra_label(i))
            self._marrow_features(idx, i + 1, inner, ds, dt, zr, hh, hd,
                                  height)
            # basivertebral vein notch at the posterior wall
            notch = inner & (dt > hd - 4.0) & (np.abs(ds) < 2.2) & (
                np.abs(zr) < 3.0)
            self.paint(idx, notch, 0.8 * self.tone['fat'])

    def _marrow_features(self, idx, unit, inner, ds, dt, zr, hh, hd, height):
        """Random endplate (Modic-like) changes and hemangiomas."""
        for side, sign in enumerate((-1.0, 1.0)):
            gain = self.modic[unit, side]
            if gain != 1.0:
                band = inner & (sign * ds > height - 5.0)
                self.paint(idx, band, self.image[idx] * gain)
        if self.hemangioma[unit]:
            ps, pt, pz = self.hemangioma_pos[unit]
            r = self.hemangioma_radius[unit]
            blob = ((ds - ps * hh)**2 + (dt - pt * hd)**2 +
                    (zr - pz * 10.0)**2) < r * r
            self.paint(idx, inner & blob, 0.9 * self.tone['fat'])

    def render_sacrum(self) -> None:
        """Sacrum: S1 body, fused segments, dorsal wall and lateral masses."""
        rng = self.rng
        length, hs1 = self.sacrum_length, self.s1_height
        idx = self.select(-length - 5.0, 5.0, -60.0, 90.0)
        if idx.size == 0:
            return
        s, t, zr = self._subset(idx)
        az = np.abs(zr)
        u = np.clip(-s / length, 0.0, 1.0)
        depth = self.depth_at(s)
        hw = self.sacrum_half_width * (1.0 - 0.7 * u)
        q = az / hw
        lat = np.clip(1.0 - q**2, 0.0, 1.0)**0.3 + 1e-3
        d = depth * lat
        dn = np.clip(t / self.sacrum_half_depth, -1.0, 1.0)
        top = -self.sacrum_cavity * (1.0 - dn**2)
        # rounded superior corners of S1 and a tapered, rounded tip
        corner = np.clip((s + 0.5 * hs1) / (0.5 * hs1), 0.0, None)
        tip = np.clip((-s - 0.8 * length) / (0.2 * length), 0.0, None)
        f = corner**6 + tip**2 + (np.abs(t) / d)**6
        body = (f <= 1.0) & (s <= top) & (s >= -length) & (q < 1.0)
        inner = (corner * 1.05)**6 + tip**2 + \
            (np.abs(t) / np.maximum(d - 1.4, 1e-3))**6 <= 1.0
        inner &= body & (s <= top - 1.4)

        back = self.canal_back_at(s)
        cw = self.canal_width_at(s)
        wall = rng.uniform(6.0, 10.0)
        dorsal_width = 0.6 * hw
        dorsal = (t > back) & (t < back + wall * (1.0 - 0.4 * u)) & (
            az < dorsal_width) & (s < -5.0) & (
                s > -0.9 * length)
        lateral_mass = (az > cw) & (az < 0.8 * hw) & (t > 0.0) & (
            t < back + 0.5 * wall) & (s < -0.3 * hs1) & (
                s > -0.75 * length)
        # superior articular processes of S1 (facet joints with L5)
        mid = 0.5 * (self.disc_lo[0] + self.disc_hi[0])
        pw = self.pedicle_width[0]
        q_lat = (az -
                 (self.canal_half_width[0] + 0.5 * pw + 2.0)) / (0.5 * pw +
                                                                 4.0)
        facet = (q_lat**4 + ((t - back - 2.5) / 7.5)**4 +
                 ((s - 0.5 * (mid - 0.5 * self.facet_gap - 25.0)) /
                  (0.5 * (mid - 0.5 * self.facet_gap + 25.0)))**6) <= 1.0
        posterior = dorsal | lateral_mass | facet
        label = SACRUM_LABEL if self.label_posterior else 0
        self._bone(
            idx, posterior, dorsal & (t > back + 1.2) &
            (t < back + wall * (1.0 - 0.4 * u) - 1.2), 0, label)
        self.paint(
            idx, (lateral_mass | facet) & ~dorsal, self.tone['marrow'] *
            self.marrow_gain[0] * (0.85 + 0.08 * self.tex_fine[idx]))

        self._bone(idx, body, inner, 0, SACRUM_LABEL)
        # remnants of the fused sacral discs
        seg = hs1
        position = -hs1
        for k in range(4):
            remnant = inner & (np.abs(s - position) < 0.9) & (
                np.abs(t) < 0.7 * d)
            self.paint(idx, remnant, self.tone['annulus'] * 1.3)
            seg *= 0.8
            position -= seg

    def finalize(self) -> Tuple[np.ndarray, np.ndarray]:
        """Apply blur, bias field, noise and intensity scaling."""
        rng = self.rng
        shape = (self.height, self.width, self.num_slices)
        image = self.image.reshape(shape)
        label = self.label.reshape(shape)
        # partial volume / point spread
        image = ndimage.gaussian_filter(
            image,
            (rng.uniform(0.4, 0.8), rng.uniform(0.4, 0.8), rng.uniform(
                0.2, 0.4)),
            truncate=2.5)
        # smooth multiplicative bias with a posterior surface-coil profile
        yy = np.linspace(
            -1.0, 1.0, self.height, dtype=np.float32)[:, None, None]
        xx = np.linspace(
            -1.0, 1.0, self.width, dtype=np.float32)[None, :, None]
        zz = np.linspace(
            -1.0, 1.0, self.num_slices, dtype=np.float32)[None, None, :]
        c = rng.normal(0.0, 1.0, 7) * np.array(
            [0.12, 0.08, 0.08, 0.06, 0.06, 0.05, 0.08])
        coil = rng.uniform(0.1, 0.45)
        log_bias = (
            c[0] * yy + c[1] * xx + c[2] * yy * yy + c[3] * xx * xx +
            c[4] * xx * yy + c[5] * zz - abs(c[6]) * zz * zz + coil * xx)
        image = image * np.exp(log_bias)
        # Rician noise
        sigma = rng.uniform(0.008, 0.03) * self.tone['csf']
        real = image + sigma * rng.standard_normal(shape, dtype=np.float32)
        imag = sigma * rng.standard_normal(shape, dtype=np.float32)
        image = np.sqrt(real * real + imag * imag)
        # global intensity scaling
        reference = np.percentile(image[::2, ::2], 99.5)
        image *= rng.uniform(600.0, 1000.0) / max(reference, 1e-3)
        return image.astype(np.float32), label.astype(np.uint8)

    def build(self) -> Tuple[np.ndarray, np.ndarray]:
        self.sample_anatomy()
        self.build_centerline()
        self.place_field_of_view()
        self.compute_coordinates()
        self.make_textures()
        self.render_background()
        self.render_posterior_elements()
        self.render_canal()
        self.render_discs()
        self.render_bodies()
        self.render_sacrum()
        return self.finalize()


def generate_case(
    rng_or_seed: Union[int, Sequence[int], np.random.Generator] = 0,
    image_size: Tuple[int, int] = (192, 192),
    num_slices: Optional[int] = None,
    *,
    slice_spacing: Optional[float] = None,
    label_posterior_elements: bool = True,
) -> Tuple[np.ndarray, np.ndarray, Tuple[float, float, float]]:
    """Generate one synthetic sagittal spine MR volume and its labels.

    Args:
        rng_or_seed (int | Sequence[int] | np.random.Generator): A generator
            (consumed in place) or a seed for ``np.random.default_rng``, e.g.
            ``(seed, case_index)``. The same seed gives identical arrays.
        image_size (tuple[int, int]): In-plane size ``(H, W)``: rows run
            superior to inferior, columns anterior to posterior.
            Defaults to (192, 192).
        num_slices (int, optional): Number of sagittal slices. Drawn from
            ``[9, 17]`` when None.
        slice_spacing (float, optional): Slice spacing in mm. Drawn from
            ``[3.0, 4.5]`` when None.
        label_posterior_elements (bool): If True (default, as in MRSpineSeg)
            pedicles, laminae, articular and spinous processes carry the
            label of their vertebra; otherwise only vertebral bodies and the
            sacrum are labelled.

    Returns:
        tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
            ``image`` float32 ``(H, W, S)`` with MR-like intensities roughly
            in ``[0, 1000]``, ``label`` uint8 ``(H, W, S)`` with values in
            ``[0, 19]`` (see :data:`SPINE_CLASSES`) and the voxel
            ``spacing`` ``(row, column, slice)`` in mm.
    """
    builder = _CaseBuilder(
        _as_generator(rng_or_seed),
        image_size,
        num_slices=num_slices,
        slice_spacing=slice_spacing,
        label_posterior_elements=label_posterior_elements)
    image, label = builder.build()
    return image, label, builder.spacing


# ----------------------------------------------------------------------
# Dataset writer
# ----------------------------------------------------------------------
def _atomic_write_nifti(array: np.ndarray, spacing: Sequence[float],
                        path: Path) -> None:
    """Save ``array`` as NIfTI through a temporary file and ``os.replace``."""
    import nibabel as nib

    affine = np.diag([*map(float, spacing), 1.0])
    nifti = nib.Nifti1Image(array, affine)
    nifti.set_qform(affine, code=1)
    nifti.set_sform(affine, code=1)
    nifti.header.set_xyzt_units('mm')
    with atomic_file(path, '.nii.gz') as tmp:
        nib.save(nifti, tmp)


def _case_files(out_dir: Path, index: int) -> Tuple[Path, Path]:
    name = f'spine_{index:03d}'
    return (out_dir / 'imagesTr' / f'{name}_0000.nii.gz',
            out_dir / 'labelsTr' / f'{name}.nii.gz')


def _is_complete(out_dir: Path, generator: Dict) -> bool:
    """Whether ``out_dir`` holds a finished dataset made with ``generator``."""
    meta_file = out_dir / 'dataset.json'
    if not meta_file.is_file():
        return False
    try:
        with open(meta_file) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return False
    if meta.get('generator') != generator:
        return False
    return all(p.is_file() for i in range(generator['num_cases'])
               for p in _case_files(out_dir, i))


def _write_case(job: Tuple[Path, int, int, Tuple[int, int]]) -> dict:
    """Draw case ``i`` of ``seed`` and write its image and label files;
    its ``dataset.json`` entry."""
    out_dir, seed, i, image_size = job
    image, label, spacing = generate_case((seed, i), image_size)
    image_file, label_file = _case_files(out_dir, i)
    image = np.clip(np.rint(image), 0, np.iinfo(np.int16).max)
    _atomic_write_nifti(image.astype(np.int16), spacing, image_file)
    _atomic_write_nifti(label, spacing, label_file)
    return dict(image=str(image_file.relative_to(out_dir)),
                label=str(label_file.relative_to(out_dir)))


def write_synthetic_dataset(out_dir: Union[str, Path],
                            num_cases: int = 40,
                            seed: int = 0,
                            image_size: Tuple[int, int] = (192, 192),
                            overwrite: bool = False,
                            progress: bool = True,
                            workers: int = 1) -> Path:
    """Write a synthetic spine dataset in the nnU-Net raw layout.

    The layout is ``imagesTr/spine_XXX_0000.nii.gz``,
    ``labelsTr/spine_XXX.nii.gz`` and ``dataset.json``. Case ``i`` is drawn
    with ``np.random.default_rng((seed, i))``; images are stored as int16
    (rounded intensities), labels as uint8, with a diagonal affine holding
    the spacing. Each file is written to a
    temporary file in the same folder and moved in place, and
    ``dataset.json`` is written last, so an interrupted run never leaves a
    corrupt file and is detected as incomplete.

    Args:
        out_dir (str | Path): Output folder, created if needed.
        num_cases (int): Number of cases. Defaults to 40.
        seed (int): Base seed. Defaults to 0.
        image_size (tuple[int, int]): In-plane size ``(H, W)``.
            Defaults to (192, 192).
        overwrite (bool): Regenerate even if ``out_dir`` already holds a
            complete dataset with the same parameters. Defaults to False.
        progress (bool): Show a progress bar. Defaults to True.
        workers (int): Processes that draw and write cases; each case
            depends only on its seed, so the files are the same for any
            number. Defaults to 1.

    Returns:
        Path: ``out_dir``.
    """
    from contextlib import nullcontext
    from multiprocessing import get_context

    from mmengine.logging import print_log
    from mmengine.utils import ProgressBar

    out_dir = Path(out_dir)
    if num_cases < 1:
        raise ValueError(f'num_cases must be positive, got {num_cases}')
    generator = dict(
        module=__name__,
        version=GENERATOR_VERSION,
        seed=int(seed),
        num_cases=int(num_cases),
        image_size=[int(v) for v in image_size])
    if not overwrite and _is_complete(out_dir, generator):
        print_log(
            f'Synthetic spine dataset already complete in {out_dir}, '
            'skipping generation (use overwrite=True to regenerate).',
            logger='current')
        return out_dir

    (out_dir / 'imagesTr').mkdir(parents=True, exist_ok=True)
    (out_dir / 'labelsTr').mkdir(parents=True, exist_ok=True)
    print_log(
        f'Generating {num_cases} synthetic spine cases '
        f'(seed={seed}, size={tuple(image_size)}) in {out_dir}',
        logger='current')
    bar = ProgressBar(num_cases) if progress else None
    jobs = [(out_dir, int(seed), i, tuple(image_size))
            for i in range(num_cases)]
    training = []
    pool = (get_context('fork').Pool(min(workers, num_cases))
            if workers > 1 else nullcontext())
    with pool:
        for entry in (pool.imap(_write_case, jobs) if workers > 1 else
                      map(_write_case, jobs)):
            training.append(entry)
            if bar is not None:
                bar.update()

    meta = dict(
        name='SyntheticSpine',
        description='Procedural sagittal T2-like MR volumes of the lower '
        'thoracic and lumbar spine with MRSpineSeg labels (vertebrae S-T9, '
        'discs L5/S-T9/T10), generated by cps4.datasets.synthetic_spine.',
        channel_names={'0': 'MR'},
        labels={
            name: value
            for value, name in enumerate(SPINE_CLASSES)
        },
        numTraining=int(num_cases),
        file_ending='.nii.gz',
        slice_axis=2,
        axes=[
            'superior_to_inferior', 'anterior_to_posterior', 'left_to_right'
        ],
        palette=[list(c) for c in SPINE_PALETTE],
        generator=generator,
        training=training)
    write_json_atomic(out_dir / 'dataset.json', meta)
    if bar is not None:
        bar.file.write('\n')  # ProgressBar does not end its line
    print_log(f'Wrote synthetic spine dataset to {out_dir}', logger='current')
    return out_dir
