# Copyright (c) CPS4 contributors. All rights reserved.
"""Column centreline, field of view and the voxel coordinates of a case.

The centreline lives in the sagittal plane with ``x`` running anterior to
posterior and ``y`` inferior to superior (mm). Every pixel is mapped to the
curvilinear ``(s, t)`` frame of :mod:`.anatomy` through its nearest
centreline point, and every voxel gets its lateral distance ``zr`` from the
(slightly oblique and bent) mid-sagittal plane of the spine.
"""
from dataclasses import dataclass
from typing import Tuple

import numpy as np
from scipy.spatial import cKDTree

from .anatomy import Anatomy
from .params import CaseParams

CENTERLINE_STEP = 0.5  # mm


@dataclass(frozen=True)
class Centerline:
    """Points of the column centreline every :data:`CENTERLINE_STEP` mm.

    Attributes:
        s (np.ndarray): Arc length of each point.
        theta (np.ndarray): Inclination of the column at each point.
        x (np.ndarray): Anterior-posterior position (0 at ``s = 0``).
        y (np.ndarray): Inferior-superior position (0 at ``s = 0``).
    """

    s: np.ndarray
    theta: np.ndarray
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class FieldOfView:
    """The imaged region, the voxel spacing and the body outline.

    Attributes:
        s_top (float): ``s`` at the top edge of the image.
        spacing (tuple[float, float, float]): ``(row, column, slice)`` mm.
        back_cover (float): Muscle cover over the spinous tips.
        fat_thickness (float): Subcutaneous fat thickness.
        back_knots (np.ndarray): ``t`` of the back muscles' surface at the
            anatomy's knots.
        glute_size (float): Bulge of the buttocks.
        front_skin (float): ``t`` of the anterior abdominal skin.
        x_left (float): ``x`` of the left (anterior) image edge.
        y_top (float): ``y`` of the top image edge.
    """

    s_top: float
    spacing: Tuple[float, float, float]
    back_cover: float
    fat_thickness: float
    back_knots: np.ndarray
    glute_size: float
    front_skin: float
    x_left: float
    y_top: float


@dataclass(frozen=True)
class Grid:
    """Coordinates of the pixels (flattened ``H * W``) and voxels.

    Attributes:
        s (np.ndarray): float32 arc length per pixel.
        t (np.ndarray): float32 distance from the centreline per pixel.
        zr (np.ndarray): float32 ``(H * W, S)`` lateral distance of each
            voxel from the mid-sagittal plane.
        z (np.ndarray): Lateral position of each slice.
    """

    s: np.ndarray
    t: np.ndarray
    zr: np.ndarray
    z: np.ndarray


def build_centerline(anatomy: Anatomy,
                     rng: np.random.Generator) -> Centerline:
    """Integrate the curved column centreline in the sagittal plane.

    Sacral slope, lumbar lordosis and thoracic kyphosis are drawn here.

    Args:
        anatomy (Anatomy): The drawn anatomy.
        rng (np.random.Generator): Random generator.

    Returns:
        Centerline: The centreline points.
    """
    lumbar_end = anatomy.top[4]  # superior endplate of L1
    theta0 = np.deg2rad(rng.uniform(26.0, 44.0))  # at the S1 endplate
    lordosis = np.deg2rad(rng.uniform(32.0, 62.0))
    exponent = rng.uniform(1.3, 2.2)
    kyphosis_rate = np.deg2rad(rng.uniform(0.03, 0.12))  # per mm
    sacral_rate = np.deg2rad(rng.uniform(0.25, 0.45))  # per mm
    posture = np.deg2rad(rng.uniform(-6.0, 6.0))

    step = CENTERLINE_STEP
    s = np.arange(-(anatomy.sacrum_length + 60.0), anatomy.top[-1] + 80.0,
                  step)
    u = np.clip(s / lumbar_end, 0.0, 1.0)
    theta = theta0 - lordosis * (1.0 - (1.0 - u)**exponent)
    theta -= kyphosis_rate * np.clip(s - lumbar_end, 0.0, None)
    theta += sacral_rate * np.clip(-s, 0.0, None)
    theta = np.clip(theta + posture, np.deg2rad(-60), np.deg2rad(80))
    # x: anterior -> posterior, y: inferior -> superior (mm)
    x = np.cumsum(-np.sin(theta)) * step
    y = np.cumsum(np.cos(theta)) * step
    origin = np.searchsorted(s, 0.0)
    return Centerline(s=s, theta=theta, x=x - x[origin], y=y - y[origin])


def place_field_of_view(params: CaseParams, anatomy: Anatomy,
                        centerline: Centerline,
                        rng: np.random.Generator) -> FieldOfView:
    """Choose the visible range, pixel spacing and in-plane position.

    Args:
        params (CaseParams): Image size and slice spacing.
        anatomy (Anatomy): The drawn anatomy.
        centerline (Centerline): The column centreline.
        rng (np.random.Generator): Random generator.

    Returns:
        FieldOfView: The imaged region.
    """
    a = anatomy
    # top edge: from just above T12 (T11 partly cut) to above T9
    s_top = rng.uniform(a.top[5] + 2.0, a.top[8] + 6.0)
    sacrum_visible = rng.uniform(35.0, 75.0)
    s, x, y = centerline.s, centerline.x, centerline.y
    y_top = np.interp(s_top, s, y)
    y_bottom = np.interp(-sacrum_visible, s, y)
    spacing = (y_top - y_bottom) / params.height

    # posterior skin: spinous tips + a muscle cover + subcutaneous fat
    tip = a.canal_back_at(a.center) + a.lamina_thickness + \
        a.spinous_length * np.cos(a.spinous_tilt)
    back_cover = rng.uniform(3.0, 12.0)
    fat_thickness = rng.uniform(6.0, 35.0)
    sacral_cover = rng.uniform(12.0, 28.0)
    back_knots = np.concatenate([[
        a.canal_back_at(-a.sacrum_length) + sacral_cover,
        a.canal_back_at(-0.5 * a.sacrum_length) + sacral_cover, tip[0] - 4.0
    ], tip, [tip[-1]]]) + back_cover
    glute_size = rng.uniform(10.0, 45.0)
    front_skin = -rng.uniform(150.0, 260.0)

    visible = (s >= -sacrum_visible) & (s <= s_top)
    cos = np.cos(centerline.theta[visible])
    back = a.profile(s[visible], back_knots) + fat_thickness
    skin_x = np.max(x[visible] + back * cos)
    front_x = np.min(x[visible] - 45.0 * cos)
    fov_x = params.width * spacing
    left = skin_x - fov_x * rng.uniform(0.86, 1.0)
    left = min(left, front_x - 0.1 * fov_x)
    return FieldOfView(
        s_top=s_top,
        spacing=(float(spacing), float(spacing), float(params.slice_spacing)),
        back_cover=back_cover,
        fat_thickness=fat_thickness,
        back_knots=back_knots,
        glute_size=glute_size,
        front_skin=front_skin,
        x_left=left,
        y_top=y_top)


def compute_coordinates(params: CaseParams, centerline: Centerline,
                        fov: FieldOfView, rng: np.random.Generator) -> Grid:
    """Map every pixel to ``(s, t)`` and every voxel to ``zr``.

    Args:
        params (CaseParams): Image size.
        centerline (Centerline): The column centreline.
        fov (FieldOfView): The imaged region.
        rng (np.random.Generator): Random generator (draws the position of
            the mid-sagittal plane).

    Returns:
        Grid: The coordinates.
    """
    height, width = params.height, params.width
    sy, sx, sz = fov.spacing
    rows = fov.y_top - (np.arange(height) + 0.5) * sy
    cols = fov.x_left + (np.arange(width) + 0.5) * sx
    px = np.broadcast_to(cols[None, :], (height, width)).ravel()
    py = np.broadcast_to(rows[:, None], (height, width)).ravel()
    tree = cKDTree(np.stack([centerline.x, centerline.y], axis=1))
    _, nearest = tree.query(np.stack([px, py], axis=1))
    dx = px - centerline.x[nearest]
    dy = py - centerline.y[nearest]
    theta = centerline.theta[nearest]
    s = (centerline.s[nearest] - dx * np.sin(theta) +
         dy * np.cos(theta)).astype(np.float32)
    t = (dx * np.cos(theta) + dy * np.sin(theta)).astype(np.float32)

    # lateral coordinate relative to a slightly oblique / bent midplane
    num_slices = params.num_slices
    z = (np.arange(num_slices) - 0.5 * (num_slices - 1)) * sz
    offset = rng.uniform(-1.0, 1.0) * sz
    tilt = rng.uniform(-0.03, 0.03)
    bend = rng.uniform(-1.2e-4, 1.2e-4)
    s_ref = 0.5 * fov.s_top
    mid = offset + tilt * (s - s_ref) + bend * (s - s_ref)**2
    zr = (z[None, :] - mid[:, None]).astype(np.float32)
    return Grid(s=s, t=t, zr=zr, z=z)
