# Copyright (c) CPS4 contributors. All rights reserved.
"""Rendering of one synthetic case: tissues and labels.

Tissues are painted in a fixed order over the abdominal viscera: the
abdominal wall, vessels and muscles, posterior elements, spinal canal,
discs, vertebral bodies and the sacrum; later tissues win. Vertebrae share
one appearance distribution and so do discs, so the identity of a unit can
only be inferred from its position counted from the sacrum. The acquisition
effects of :mod:`.acquisition` follow.
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from .acquisition import simulate_acquisition
from .anatomy import Anatomy, Appearance, sample_anatomy, sample_appearance
from .geometry import (FieldOfView, Grid, build_centerline,
                       compute_coordinates, place_field_of_view)
from .params import (NUM_LEVELS, SACRUM_LABEL, CaseParams, disc_label,
                     vertebra_label)
from .textures import Textures, make_textures


def _as_generator(
    rng_or_seed: Union[int, Sequence[int], np.random.Generator]
) -> np.random.Generator:
    """Return ``rng_or_seed`` itself or a generator seeded with it."""
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    return np.random.default_rng(rng_or_seed)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, written with ``tanh``."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def render_viscera(anatomy: Anatomy, appearance: Appearance, grid: Grid,
                   tex: Textures, rng: np.random.Generator) -> np.ndarray:
    """Abdominal viscera: bowel loops with fluid and gas, solid organs.

    This is the base image the other tissues are painted over.

    Args:
        anatomy (Anatomy): The drawn anatomy.
        appearance (Appearance): Tissue intensities.
        grid (Grid): Pixel and voxel coordinates.
        tex (Textures): Texture fields.
        rng (np.random.Generator): Random generator.

    Returns:
        np.ndarray: float32 ``(H * W, S)`` intensities.
    """
    tone = appearance.tone
    s = grid.s[:, None]
    image = tone['viscera'] * (1.0 + 0.12 * tex.mid)
    fluid = _sigmoid((tex.coarse - rng.uniform(0.2, 0.8)) * 5.0)
    image += (tone['fluid'] - image) * fluid
    gas = tex.fine * 0.3 + tex.coarse < -rng.uniform(1.3, 1.9)
    image = np.where(gas, 20.0, image)
    organ_start = anatomy.center[5] + rng.uniform(-25.0, 15.0)
    organ = (s + 12.0 * tex.coarse > organ_start)
    image = np.where(organ, tone['organ'] * (1.0 + 0.05 * tex.mid), image)
    return image.astype(np.float32)


class SpineRenderer:
    """Paints the tissues and labels of one case.

    The pixels of the sagittal plane are flattened (``H * W`` rows) and the
    slices are the columns of ``image`` and ``label``; each ``render_*``
    method paints one group of tissues, in the order of :meth:`render`.

    Args:
        params (CaseParams): Acquisition parameters.
        anatomy (Anatomy): The drawn anatomy.
        appearance (Appearance): Tissue intensities.
        fov (FieldOfView): The imaged region.
        grid (Grid): Pixel and voxel coordinates.
        tex (Textures): Texture fields.
        image (np.ndarray): float32 ``(H * W, S)`` base image (see
            :func:`render_viscera`), painted in place.
        rng (np.random.Generator): Random generator for the remaining
            draws.
    """

    def __init__(self, params: CaseParams, anatomy: Anatomy,
                 appearance: Appearance, fov: FieldOfView, grid: Grid,
                 tex: Textures, image: np.ndarray,
                 rng: np.random.Generator):
        self.params = params
        self.anatomy = anatomy
        self.appearance = appearance
        self.fov = fov
        self.grid = grid
        self.tex = tex
        self.image = image
        self.label = np.zeros(image.shape, np.uint8)
        self.rng = rng

    def render(self) -> Tuple[np.ndarray, np.ndarray]:
        """Paint every tissue group and simulate the acquisition.

        Returns:
            tuple[np.ndarray, np.ndarray]: float32 image and uint8 label,
            ``(H, W, S)`` each.
        """
        self.render_background()
        self.render_posterior_elements()
        self.render_canal()
        self.render_discs()
        self.render_bodies()
        self.render_sacrum()
        return simulate_acquisition(self.image, self.label, self.params,
                                    self.appearance.tone['csf'], self.rng)

    def select(self, s_lo: float, s_hi: float, t_lo: float,
               t_hi: float) -> np.ndarray:
        """Flat indices of the pixels inside an ``(s, t)`` box."""
        return np.flatnonzero((self.grid.s >= s_lo) & (self.grid.s <= s_hi)
                              & (self.grid.t >= t_lo) & (self.grid.t <= t_hi))

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
        """Abdominal wall, retroperitoneum, vessels, muscles, fat and air."""
        an = self.anatomy
        tone = self.appearance.tone
        rng = self.rng
        s, t, zr = self.grid.s[:, None], self.grid.t[:, None], self.grid.zr
        depth = an.depth_at(s)
        canal_back = an.canal_back_at(s)
        az = np.abs(zr)
        all_idx = np.arange(self.grid.s.size)

        # anterior abdominal wall and air in front of it
        wall_fat = rng.uniform(5.0, 30.0)
        wall_muscle = rng.uniform(8.0, 13.0)
        front = self.fov.front_skin
        self.paint(all_idx, t < front + wall_fat + wall_muscle,
                   tone['muscle'] * (1 + 0.08 * self.tex.fiber))
        self.paint(all_idx, t < front + wall_fat,
                   tone['fat'] * (1 + 0.04 * self.tex.mid))
        self.paint(all_idx, t < front, 0.0)

        # retroperitoneal fat and great vessels in front of the column
        rp = rng.uniform(4.0, 14.0)
        prevertebral = (t < -depth + 2.0) & (
            t > -depth - rp - 5.0 * (1 + self.tex.coarse))
        self.paint(all_idx, prevertebral,
                   tone['fat'] * (1 + 0.05 * self.tex.mid))
        # ligaments and periosteum wrapping the column
        self.paint(all_idx, (t > -depth - 1.5) & (t < canal_back) &
                   (az < 0.6 * an.width_at(s)),
                   tone['ligament'] * (1.3 + 0.2 * self.tex.mid))
        bifurcation = an.center[1] + rng.uniform(-10.0, 10.0)
        for name, z0, radius, flat in (('vessel', -rng.uniform(8.0, 22.0),
                                        rng.uniform(8.0, 11.5), 1.0),
                                       ('vein', rng.uniform(8.0, 24.0),
                                        rng.uniform(9.0, 13.0), 0.7)):
            below = np.clip(bifurcation - s, 0.0, None)
            zc = z0 + np.sign(z0) * 0.5 * below
            rad = np.where(below > 0, 0.75 * radius, radius)
            tc = -depth - 2.0 - flat * rad
            inside = ((t - tc) / (flat * rad))**2 + ((zr - zc) / rad)**2 < 1
            self.paint(all_idx, inside, tone[name] * (1 + 0.05 * self.tex.mid))

        # psoas and other muscles lateral to the column
        psoas = np.clip((an.top[4] - s) / (an.top[4] + 1e-3), 0.0, 1.0)
        psoas_depth = 3.0 + psoas * rng.uniform(15.0, 30.0)
        lateral = (az > 0.55 * an.width_at(s)) & (t > -depth - psoas_depth) \
            & (t < canal_back)
        self.paint(all_idx, lateral,
                   tone['muscle'] * (1 + 0.1 * self.tex.fiber))

        # paraspinal muscles with fatty streaks, subcutaneous fat, air
        back = an.profile(s, self.fov.back_knots)
        # buttocks bulge out next to the midline below the lumbar spine
        fov = self.fov
        back = back + fov.glute_size * np.clip((az - 8.0) / 25.0, 0, 1) * \
            np.exp(-((s + 70.0) / 45.0)**2)
        fat_edge = back + fov.fat_thickness * (1 + 0.15 * self.tex.coarse)
        streak = np.clip(self.tex.fiber - rng.uniform(1.2, 2.2), 0.0, 1.0)
        muscle = tone['muscle'] * (1 + 0.1 * self.tex.fiber) + \
            (tone['fat'] - tone['muscle']) * streak
        self.paint(all_idx, (t > canal_back - 2.0) & (t < back), muscle)
        self.paint(all_idx, (t >= back) & (t < fat_edge),
                   tone['fat'] * (1 + 0.04 * self.tex.mid))
        self.paint(all_idx, t >= fat_edge, 0.0)

    def _subset(self, idx: np.ndarray):
        """``s``, ``t`` (as columns) and ``zr`` of the pixels ``idx``."""
        grid = self.grid
        return grid.s[idx, None], grid.t[idx, None], grid.zr[idx]

    def render_posterior_elements(self) -> None:
        """Foramina, ligaments, pedicles, laminae, pillars and processes."""
        an = self.anatomy
        tone = self.appearance.tone
        label_of = (lambda lab: lab) \
            if self.params.label_posterior_elements else (lambda lab: 0)

        # neural foramina (fat) and ligamentum flavum over the whole column
        idx = self.select(-an.sacrum_length - 10, self.fov.s_top + 40, 0.0,
                          150.0)
        s, t, zr = self._subset(idx)
        az = np.abs(zr)
        depth, cw = an.depth_at(s), an.canal_width_at(s)
        back = an.canal_back_at(s)
        pw = np.interp(s, an.center, an.pedicle_width)
        foramen = (az > cw - 1.0) & (az < cw + pw + 2.0) & (t > depth) & \
            (t < back)
        self.paint(idx, foramen,
                   0.85 * tone['fat'] * (1 + 0.06 * self.tex.mid[idx]))
        flavum = (az < cw + 2.0) & (t > back - 1.0) & (t < back + 3.0)
        self.paint(idx, flavum, tone['ligament'])
        interspinous = (az < an.spinous_half_width + 1.0) & (t > back) & (
            t < back + 45.0)
        self.paint(idx, interspinous,
                   tone['ligament'] * (1.5 + 0.3 * self.tex.fiber[idx]))

        for i in range(NUM_LEVELS):
            self._render_vertebra_arch(i, label_of(vertebra_label(i)))

    def _bone(self, idx, outer, inner, unit, label):
        """Paint cortical shell ``outer`` and textured marrow ``inner``."""
        ap = self.appearance
        marrow = ap.tone['marrow'] * ap.marrow_gain[unit] * (
            1.0 + 0.1 * self.tex.fine[idx] + 0.08 * self.tex.mid[idx])
        self.paint(idx, outer, ap.tone['cortex'], label)
        self.paint(idx, inner & outer, marrow)

    def _render_vertebra_arch(self, i: int, label: int) -> None:
        """Pillars, pedicles, lamina, spinous process and nerve root."""
        an = self.anatomy
        ap = self.appearance
        hh = an.half_height[i]
        sc = an.center[i]
        below = 0.5 * (an.disc_lo[i] + an.disc_hi[i])
        above = 0.5 * (an.disc_lo[i + 1] + an.disc_hi[i + 1]) \
            if i + 1 < NUM_LEVELS else sc + hh + 4.0
        idx = self.select(below - 30.0, above + 5.0, 0.0, 130.0)
        if idx.size == 0:
            return
        s, t, zr = self._subset(idx)
        az = np.abs(zr)
        depth = an.depth_at(s)
        back = an.canal_back_at(s)
        cw = an.canal_width_at(s)
        pw = an.pedicle_width[i]
        lt = an.lamina_thickness
        rim = 1.2
        unit = i + 1

        # articular pillars, split at the facet joints (disc mid levels)
        q_lat = (az - (cw + 0.5 * pw + 2.0)) / (0.5 * pw + 4.0)
        q_t = (t - (back + 2.5)) / 7.5
        lo, hi = below + 0.5 * an.facet_gap, above - 0.5 * an.facet_gap
        q_s = (s - 0.5 * (lo + hi)) / (0.5 * (hi - lo))
        f = q_lat**4 + q_t**4 + q_s**6
        self._bone(idx, f <= 1.0, f <= 0.6, unit, label)

        # pedicles: attach to the upper half of the body
        ped_s = (s - (sc + 0.3 * hh)) / (0.36 * hh)
        t0, t1 = 0.5 * an.half_depth[i], back + 2.0
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
        tilt = an.spinous_tilt[i]
        length = an.spinous_length[i]
        base = back + 0.5 * lt
        a = (t - base) * np.cos(tilt) - (s - sa) * np.sin(tilt)
        b = (t - base) * np.sin(tilt) + (s - sa) * np.cos(tilt)
        a_rel = np.clip(a / length, 0.0, 1.0)
        half = an.spinous_height[i] * (1.0 - 0.25 * a_rel)
        f_a = np.clip((a - 0.5 * length) / (0.5 * length), 0.0, None)**4
        f = f_a + np.abs(b / half)**4 + \
            np.abs(zr / an.spinous_half_width)**4
        outer = (f <= 1.0) & (a >= 0.0)
        self._bone(idx, outer, outer & (f <= 0.5), unit, label)

        # exiting nerve root in the foramen below the pedicle
        root = ((s - (sc - 0.35 * hh)) / 3.2)**2 + \
            ((t - (depth + an.canal_gap + 0.35 * an.canal_depth[i])) /
             3.0)**2 + ((az - (cw + 0.5 * pw)) / 4.0)**2 < 1.0
        self.paint(idx, root, ap.tone['cord'], 0)

    def render_canal(self) -> None:
        """Spinal canal: CSF, cord, cauda equina and epidural tissues."""
        an = self.anatomy
        tone = self.appearance.tone
        idx = self.select(-an.sacrum_length - 10, self.fov.s_top + 40, 0.0,
                          80.0)
        s, t, zr = self._subset(idx)
        depth = an.depth_at(s)
        cw = an.canal_width_at(s)
        c = an.canal_depth_at(s)
        lateral = np.clip(1.0 - (zr / cw)**2, 0.0, 1.0)
        front = depth + an.canal_gap
        back = front + c * np.sqrt(lateral)
        canal = (t > depth) & (t < back) & (lateral > 0)
        self.paint(idx, canal, tone['fat'] * (1 + 0.05 * self.tex.mid[idx]), 0)
        self.paint(idx, canal & (t < front), tone['ligament'])

        # thecal sac with CSF down to the upper sacrum
        sac_back = back - 1.5 - 1.0 * (s < an.center[2])
        sac = canal & (t >= front) & (t < sac_back) & (np.abs(zr)
                                                       < 0.9 * cw) & (
                                                           s > an.sac_end)
        csf = tone['csf'] * (1 + 0.03 * self.tex.mid[idx])
        self.paint(idx, sac, csf)
        # cord above the conus, cauda equina roots lying dorsally below it
        taper = np.clip((s - an.conus) / 15.0, 0.0, 1.0)**0.5
        tc = front + 0.45 * c
        cord = ((t - tc) / (4.2 * taper + 1e-3))**2 + \
            (zr / (5.0 * taper + 1e-3))**2 < 1.0
        self.paint(idx, sac & cord, tone['cord'])
        roots = sac & (s < an.conus + 5.0) & (t > front + 0.45 * c) & (
            self.tex.fiber[idx] > 0.4)
        self.paint(idx, roots, 0.5 * (tone['cord'] + tone['csf']))

    def render_discs(self) -> None:
        """Intervertebral discs with annulus and nucleus."""
        an = self.anatomy
        tone = self.appearance.tone
        rng = self.rng
        cleft_tone = rng.uniform(0.45, 0.75)
        for i in range(NUM_LEVELS):
            lo, hi = an.disc_lo[i], an.disc_hi[i]
            idx = self.select(lo - 8.0, hi + 8.0, -60.0, 60.0)
            if idx.size == 0:
                continue
            s, t, zr = self._subset(idx)
            # lower and upper endplates (sacrum or the vertebra below)
            if i == 0:
                d_lo, cav_lo, w_lo = an.sacrum_half_depth, \
                    an.sacrum_cavity, an.sacrum_half_width
            else:
                d_lo, cav_lo, w_lo = an.half_depth[i - 1], \
                    an.cavity[i - 1], an.half_width[i - 1]
            d_hi, cav_hi, w_hi = an.half_depth[i], an.cavity[i], \
                an.half_width[i]
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
            ant = (dmean + an.disc_bulge_ant[i] * bulge) * lat
            post = (dmean + an.disc_bulge_post[i] * bulge) * lat
            disc = (s >= floor) & (s <= ceil) & (t > -ant) & (t < post) & (
                q < 1.0)
            self.paint(idx, disc,
                       tone['annulus'] * (1 + 0.06 * self.tex.mid[idx]),
                       disc_label(i))
            # nucleus: bright, smoothly fading into the annulus
            hyd = an.disc_hydration[i]
            nucleus_tone = tone['annulus'] + hyd * (
                tone['nucleus'] - tone['annulus'])
            rn = ((s - 0.5 * (lo + hi)) / (0.5 * height + 1.0))**2 + \
                ((t - 0.08 * dmean) / (0.72 * dmean))**2 + (q / 0.8)**2
            weight = np.clip((1.0 - rn) / 0.35, 0.0, 1.0)
            value = tone['annulus'] + (nucleus_tone - tone['annulus']) * \
                weight * (1 + 0.05 * self.tex.fine[idx])
            self.paint(idx, disc & (rn < 1.0), value)
            if an.disc_cleft[i] and height > 6.0:
                cleft = disc & (np.abs(s - 0.5 * (lo + hi)) < 0.6) & (
                    np.abs(t) < 0.5 * dmean)
                self.paint(idx, cleft, cleft_tone * nucleus_tone)

    def render_bodies(self) -> None:
        """Vertebral bodies of L5 ... T9."""
        an = self.anatomy
        ap = self.appearance
        p = 6.0
        for i in range(NUM_LEVELS):
            hh, hd, hw = an.half_height[i], an.half_depth[i], \
                an.half_width[i]
            sc = an.center[i]
            idx = self.select(sc - hh - 3.0, sc + hh + 3.0, -hd - 6.0,
                              hd + 6.0)
            if idx.size == 0:
                continue
            s, t, zr = self._subset(idx)
            ds, dt = s - sc, t - an.body_offset[i]
            q = np.abs(zr) / hw
            depth = hd * np.clip(1.0 - q**2.5, 0.0, 1.0)**0.4 + 1e-3
            height = hh * (1.0 - 0.08 * q**2)
            height = height - an.cavity[i] * np.clip(
                1.0 - (dt / hd)**2, 0.0, 1.0)
            waist = 1.0 - an.waist[i] * np.clip(1.0 - (ds / hh)**2, 0, 1)
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
            self.paint(idx, notch, 0.8 * ap.tone['fat'])

    def _marrow_features(self, idx, unit, inner, ds, dt, zr, hh, hd, height):
        """Random endplate (Modic-like) changes and hemangiomas."""
        ap = self.appearance
        for side, sign in enumerate((-1.0, 1.0)):
            gain = ap.modic[unit, side]
            if gain != 1.0:
                band = inner & (sign * ds > height - 5.0)
                self.paint(idx, band, self.image[idx] * gain)
        if ap.hemangioma[unit]:
            ps, pt, pz = ap.hemangioma_pos[unit]
            r = ap.hemangioma_radius[unit]
            blob = ((ds - ps * hh)**2 + (dt - pt * hd)**2 +
                    (zr - pz * 10.0)**2) < r * r
            self.paint(idx, inner & blob, 0.9 * ap.tone['fat'])

    def render_sacrum(self) -> None:
        """Sacrum: S1 body, fused segments, dorsal wall and lateral masses."""
        an = self.anatomy
        ap = self.appearance
        rng = self.rng
        length, hs1 = an.sacrum_length, an.s1_height
        idx = self.select(-length - 5.0, 5.0, -60.0, 90.0)
        if idx.size == 0:
            return
        s, t, zr = self._subset(idx)
        az = np.abs(zr)
        u = np.clip(-s / length, 0.0, 1.0)
        depth = an.depth_at(s)
        hw = an.sacrum_half_width * (1.0 - 0.7 * u)
        q = az / hw
        lat = np.clip(1.0 - q**2, 0.0, 1.0)**0.3 + 1e-3
        d = depth * lat
        dn = np.clip(t / an.sacrum_half_depth, -1.0, 1.0)
        top = -an.sacrum_cavity * (1.0 - dn**2)
        # rounded superior corners of S1 and a tapered, rounded tip
        corner = np.clip((s + 0.5 * hs1) / (0.5 * hs1), 0.0, None)
        tip = np.clip((-s - 0.8 * length) / (0.2 * length), 0.0, None)
        f = corner**6 + tip**2 + (np.abs(t) / d)**6
        body = (f <= 1.0) & (s <= top) & (s >= -length) & (q < 1.0)
        inner = (corner * 1.05)**6 + tip**2 + \
            (np.abs(t) / np.maximum(d - 1.4, 1e-3))**6 <= 1.0
        inner &= body & (s <= top - 1.4)

        back = an.canal_back_at(s)
        cw = an.canal_width_at(s)
        wall = rng.uniform(6.0, 10.0)
        dorsal_width = 0.6 * hw
        dorsal = (t > back) & (t < back + wall * (1.0 - 0.4 * u)) & (
            az < dorsal_width) & (s < -5.0) & (
                s > -0.9 * length)
        lateral_mass = (az > cw) & (az < 0.8 * hw) & (t > 0.0) & (
            t < back + 0.5 * wall) & (s < -0.3 * hs1) & (
                s > -0.75 * length)
        # superior articular processes of S1 (facet joints with L5)
        mid = 0.5 * (an.disc_lo[0] + an.disc_hi[0])
        pw = an.pedicle_width[0]
        q_lat = (az -
                 (an.canal_half_width[0] + 0.5 * pw + 2.0)) / (0.5 * pw +
                                                                 4.0)
        facet = (q_lat**4 + ((t - back - 2.5) / 7.5)**4 +
                 ((s - 0.5 * (mid - 0.5 * an.facet_gap - 25.0)) /
                  (0.5 * (mid - 0.5 * an.facet_gap + 25.0)))**6) <= 1.0
        posterior = dorsal | lateral_mass | facet
        label = SACRUM_LABEL if self.params.label_posterior_elements else 0
        self._bone(
            idx, posterior, dorsal & (t > back + 1.2) &
            (t < back + wall * (1.0 - 0.4 * u) - 1.2), 0, label)
        self.paint(
            idx, (lateral_mass | facet) & ~dorsal, ap.tone['marrow'] *
            ap.marrow_gain[0] * (0.85 + 0.08 * self.tex.fine[idx]))

        self._bone(idx, body, inner, 0, SACRUM_LABEL)
        # remnants of the fused sacral discs
        seg = hs1
        position = -hs1
        for k in range(4):
            remnant = inner & (np.abs(s - position) < 0.9) & (
                np.abs(t) < 0.7 * d)
            self.paint(idx, remnant, ap.tone['annulus'] * 1.3)
            seg *= 0.8
            position -= seg

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
    rng = _as_generator(rng_or_seed)
    params = CaseParams.draw(
        rng,
        image_size,
        num_slices=num_slices,
        slice_spacing=slice_spacing,
        label_posterior_elements=label_posterior_elements)
    anatomy = sample_anatomy(rng)
    appearance = sample_appearance(rng)
    centerline = build_centerline(anatomy, rng)
    fov = place_field_of_view(params, anatomy, centerline, rng)
    grid = compute_coordinates(params, centerline, fov, rng)
    tex = make_textures(params, fov.spacing, rng)
    image = render_viscera(anatomy, appearance, grid, tex, rng)
    image, label = SpineRenderer(params, anatomy, appearance, fov, grid, tex,
                                 image, rng).render()
    return image, label, fov.spacing
