"""Obstetric ultrasound phantom: a fetal head in the amniotic sac, as in HC18.

The image is formed the way a B-mode scanner forms it, in a simplified way: an echogenicity
map (how strongly each tissue scatters) times acoustic shadowing along the beam (the skull
attenuates what lies behind it; fluid lets more through), times fully developed speckle (the
magnitude of spatially correlated complex Gaussian noise, i.e. Rayleigh), log-compressed to
8 bits inside a curvilinear sector. The skull rim is brightest where the beam hits it at right
angles (specular reflection). Rows run along the depth; the probe sits above the first row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ._geometry import (
    Blob,
    Grid,
    Tube,
    paint,
    pick_inside,
    placed,
    random_blob,
    rotation,
    smooth_field,
)

LABELS = {1: "fetal_head", 2: "amniotic_fluid", 3: "placenta", 4: "cyst"}

DEPTH_MM = 150.0  # imaging depth across the rows
WIDTH_MM = 200.0  # smallest lateral field of view
ELEVATION_MM = 80.0  # sweep of a 3D probe across the slices
PSF_MM = (0.35, 0.9, 1.2)  # speckle correlation: axial (rows), lateral (columns), elevation
DYNAMIC_RANGE_DB = 52.0


def spacing_for(shape: tuple[int, int, int], is_volume: bool) -> tuple[float, float, float]:
    """(dz, dy, dx) mm: square pixels, at least 150 mm deep and 200 mm wide; 80 mm sweep."""
    in_plane = max(DEPTH_MM / shape[1], WIDTH_MM / shape[2])
    dz = float(np.clip(ELEVATION_MM / shape[0], 0.3, 3.0)) if is_volume else 1.0
    return (dz, in_plane, in_plane)


@dataclass
class _Scan:
    """What the scanner sees, being built: echogenicity, extra attenuation and labels."""

    grid: Grid
    echo: NDArray[np.float64]  # scattering strength, linear
    atten: NDArray[np.float64]  # excess attenuation, 1/mm, relative to soft tissue
    label: NDArray[np.uint8]


@dataclass(frozen=True)
class _Sector:
    """A curvilinear probe's field of view: apex above the image, half-angle ``alpha``."""

    apex_y: float
    alpha: float
    r_min: float
    r_max: float

    def polar(self, grid: Grid) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(r, θ) of every pixel from the apex, shape (1, H, W)."""
        _, y, x = grid.coords(grid.full())
        return np.hypot(y - self.apex_y, x), np.arctan2(x, y - self.apex_y)

    def mask(self, grid: Grid) -> NDArray[np.bool_]:
        r, theta = self.polar(grid)
        inside = (r >= self.r_min) & (r <= self.r_max) & (np.abs(theta) <= self.alpha)
        return np.broadcast_to(inside, grid.shape)


def build(
    rng: np.random.Generator, grid: Grid
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], dict]:
    """(B-mode image uint8, label map uint8, noise description), both (D, H, W)."""
    u = rng.uniform
    depth = grid.y[-1] - grid.y[0]
    apex_y = grid.y[0] - u(0.08, 0.14) * depth
    sector = _Sector(
        apex_y=apex_y,
        alpha=u(0.62, 0.85),
        r_min=grid.y[0] - apex_y + u(0.02, 0.06) * depth,
        r_max=(grid.y[-1] - apex_y) * u(0.98, 1.06),
    )
    scan = _Scan(grid, np.empty(grid.shape), np.zeros(grid.shape), np.zeros(grid.shape, np.uint8))
    texture = smooth_field(rng, grid.shape, _px(grid, (2.0, 2.0, 2.0)))
    wall = _maternal_tissue(rng, scan, sector, texture)
    head = _head_geometry(rng, sector, depth)
    sac = _amniotic_sac(rng, scan, head)
    _placenta(rng, scan, sac, sector)
    _fetal_head(rng, scan, head, sector, texture)
    _cyst(rng, scan, sac, sector, wall)
    image = _b_mode(rng, scan, sector)
    scan.label[~sector.mask(grid)] = 0
    return image, scan.label, {"type": "speckle (Rayleigh)", "psf_mm": PSF_MM}


def _maternal_tissue(
    rng: np.random.Generator, scan: _Scan, sector: _Sector, texture: NDArray
) -> float:
    """Textured background with a bright layered abdominal wall; returns the wall's depth."""
    scan.echo[:] = 0.2 * np.exp(0.3 * texture)
    wall = rng.uniform(10, 18)
    r, _ = sector.polar(scan.grid)
    period = rng.uniform(4, 7)
    layers = (r - sector.r_min < wall) * (
        0.5 + 0.4 * np.sin(2 * math.pi * (r - sector.r_min) / period)
    )
    scan.echo += np.broadcast_to(layers, scan.grid.shape)
    return wall


def _head_geometry(rng: np.random.Generator, sector: _Sector, depth: float) -> Blob:
    """An exact ellipsoid (HC18 fits ellipses) centred on a ray in the lower middle."""
    u = rng.uniform
    ray = u(-0.3, 0.3) * sector.alpha
    reach = sector.r_min + (sector.r_max - sector.r_min) * u(0.52, 0.62)
    centre = np.array([u(-2, 2), sector.apex_y + reach * math.cos(ray), reach * math.sin(ray)])
    a = depth * u(0.2, 0.26)  # semi-major axis, in the image plane
    b = a * u(0.76, 0.88)
    radii = np.array([b * u(0.95, 1.05), b, a])
    return Blob(centre, radii, rotation(u(0, math.pi)), np.zeros((0, 3)), np.zeros(0), np.zeros(0))


def _amniotic_sac(rng: np.random.Generator, scan: _Scan, head: Blob) -> Blob:
    """Anechoic fluid around the head, lined by the bright uterine wall."""
    u = rng.uniform
    b, a = head.radii[1], head.radii[2]
    sac = random_blob(
        rng,
        tuple(head.centre + u(-8, 8, size=3) * (0, 1, 1)),
        (b * u(1.3, 1.6), b * u(1.25, 1.5), a * u(1.2, 1.4)),
        yaw=math.atan2(head.rot[2, 1], head.rot[1, 1]) + u(-0.3, 0.3),  # the head's yaw
        deform=0.18,
    )
    box, level = placed(sac.evaluate(scan.grid, scale=1.2))
    paint(scan.echo, 0.85, box, (level < 1.12) & (level >= 1.0))
    paint(scan.echo, 0.006, box, level < 1.0)
    paint(scan.atten, -0.004, box, level < 1.0)  # fluid attenuates less than tissue
    paint(scan.label, 2, box, level < 1.0)
    return sac


def _placenta(rng: np.random.Generator, scan: _Scan, sac: Blob, sector: _Sector) -> None:
    """A thick, granular band bending along the inside of the sac's wall, in the view."""
    radius = rng.uniform(9, 14)
    span = rng.uniform(1.0, 1.8)
    scale = sac.radii * (1.0 - (radius + 2) / sac.radii.max())

    def arc(start: float) -> NDArray[np.float64]:
        phi = np.linspace(start, start + span, 12)
        points = np.stack([np.zeros_like(phi), np.cos(phi), np.sin(phi)], axis=1) * scale
        return points @ sac.rot + sac.centre  # blob frame -> grid frame

    # Where along the wall: the first random position whose middle the probe can see.
    grid = scan.grid
    starts = rng.uniform(0, 2 * math.pi, 24)
    middles = np.array([arc(start)[6] for start in starts])
    r = np.hypot(middles[:, 1] - sector.apex_y, middles[:, 2])
    theta = np.arctan2(middles[:, 2], middles[:, 1] - sector.apex_y)
    visible = (r > sector.r_min + radius) & (r < sector.r_max - radius)
    visible &= np.abs(theta) < sector.alpha * 0.9
    visible &= (middles[:, 1] > grid.y[0]) & (middles[:, 1] < grid.y[-1])
    visible &= (middles[:, 2] > grid.x[0]) & (middles[:, 2] < grid.x[-1])
    centre_distance = np.hypot(middles[:, 1], middles[:, 2])
    pick = int(np.flatnonzero(visible)[0]) if visible.any() else int(centre_distance.argmin())
    placenta = Tube(arc(starts[pick]), radius)
    box, dist = placed(placenta.evaluate(grid))
    inside = dist < radius
    granules = smooth_field(rng, inside.shape, _px(grid, (0.8, 0.8, 0.8)))
    paint(scan.echo, 0.0, box, inside)
    scan.echo[box] += inside * 0.5 * np.exp(0.35 * granules)
    paint(scan.atten, 0.0, box, inside)
    paint(scan.label, 3, box, inside)


def _fetal_head(
    rng: np.random.Generator, scan: _Scan, head: Blob, sector: _Sector, texture: NDArray
) -> None:
    """Skull rim (specular, attenuating), hypoechoic brain and the midline echo."""
    box, level = placed(head.evaluate(scan.grid))
    coords = scan.grid.coords(box)
    b, a = head.radii[1], head.radii[2]
    thickness = rng.uniform(2.5, 4.0)
    rim = (level < 1.0) & (level >= 1.0 - thickness / b)
    brain = level < 1.0 - thickness / b
    offsets = [c - c0 for c, c0 in zip(coords, head.centre, strict=True)]
    across, along = (sum(head.rot[i, j] * offsets[j] for j in range(3)) for i in (1, 2))
    midline = brain & (np.abs(across) < 0.9) & (np.abs(along) < 0.65 * a)
    rim_echo = 3.0 * (0.2 + 0.8 * _incidence(head, coords, sector.apex_y) ** 2)
    view = scan.echo[box]
    view[brain] = np.broadcast_to(0.1 * np.exp(0.35 * texture[box]), view.shape)[brain]
    view[midline] = 0.9
    view[rim] = np.broadcast_to(rim_echo, view.shape)[rim]
    paint(scan.atten, 0.0, box, level < 1.0)
    paint(scan.atten, 0.22, box, rim)
    paint(scan.label, 1, box, level < 1.0)


def _cyst(rng: np.random.Generator, scan: _Scan, sac: Blob, sector: _Sector, wall: float) -> None:
    """A small anechoic blob in the maternal tissue, clear of the sac (posterior enhancement)."""
    radius = max(rng.uniform(4, 8), 1.6 * scan.grid.spacing[1])
    index = _cyst_site(
        rng,
        scan.grid,
        scan.label,
        sac,
        (sector.apex_y, sector.r_min + wall, sector.r_max, sector.alpha),
        radius,
    )
    centre = tuple(
        ax[i] for ax, i in zip((scan.grid.z, scan.grid.y, scan.grid.x), index, strict=True)
    )
    cyst = random_blob(rng, centre, (radius, radius, radius), deform=0.1)
    box, level = placed(cyst.evaluate(scan.grid))
    paint(scan.echo, 0.004, box, level < 1.0)
    paint(scan.atten, -0.02, box, level < 1.0)
    paint(scan.label, 4, box, level < 1.0)
    scan.label[index] = 4  # present at any resolution


def _b_mode(rng: np.random.Generator, scan: _Scan, sector: _Sector) -> NDArray[np.uint8]:
    """Shadowing × speckle × echogenicity, log-compressed to 8 bits inside the sector."""
    r, _ = sector.polar(scan.grid)
    shadow = _shadowing(scan.grid, scan.atten, sector)
    envelope = scan.echo * shadow * _speckle(rng, scan.grid) * np.exp(-0.0015 * (r - sector.r_min))
    decibels = 20.0 * np.log10(envelope + 1e-6)
    top = 20.0 * math.log10(3.0)  # the brightest rim maps to white
    grey = np.clip((decibels - (top - DYNAMIC_RANGE_DB)) / DYNAMIC_RANGE_DB, 0.0, 1.0) ** 1.6
    return np.where(sector.mask(scan.grid), np.rint(255.0 * grey), 0).astype(np.uint8)


def _cyst_site(
    rng: np.random.Generator,
    grid: Grid,
    label: NDArray[np.uint8],
    fluid: Blob,
    sector: tuple[float, float, float, float],
    radius: float,
) -> tuple[int, int, int]:
    """Index of a cyst centre inside the sector, clear of the sac, the head and the wall."""
    apex_y, r_low, r_high, alpha = sector
    margin = radius + 3.0
    r = rng.uniform(r_low + margin, r_high - margin, 64)
    theta = rng.uniform(-alpha, alpha, 64) * (1.0 - margin / r_high)
    z = rng.uniform(grid.z[0], grid.z[-1], 64) * 0.5
    y, x = apex_y + r * np.cos(theta), r * np.sin(theta)
    inside = (y > grid.y[0] + margin) & (y < grid.y[-1] - margin)
    inside &= (x > grid.x[0] + margin) & (x < grid.x[-1] - margin)
    clear = fluid.level((z, y, x)) > 1.25 + margin / float(fluid.radii.min())
    good = np.flatnonzero(inside & clear)
    if good.size:
        k = int(good[0])
        return (
            int(np.abs(grid.z - z[k]).argmin()),
            int(np.abs(grid.y - y[k]).argmin()),
            int(np.abs(grid.x - x[k]).argmin()),
        )
    # Crowded sector (small images): the deepest free voxel.
    free = (label == 0) & np.broadcast_to(
        np.hypot(grid.coords(grid.full())[1] - apex_y, grid.coords(grid.full())[2]) > r_low,
        grid.shape,
    )
    iz, iy, ix = pick_inside(rng, free, grid.spacing, margin)
    return iz, iy, ix


def _px(grid: Grid, mm: tuple[float, float, float]) -> tuple[float, float, float]:
    (dz, dy, dx), (z, y, x) = grid.spacing, mm
    return (z / dz, y / dy, x / dx)


def _incidence(head: Blob, coords, apex_y: float) -> NDArray[np.float64]:
    """|cos| of the angle between the beam and the ellipsoid's surface normal."""
    z, y, x = coords
    offsets = [z - head.centre[0], y - head.centre[1], x - head.centre[2]]
    # Normal of |R p / r|² = const: Rᵀ diag(1/r²) R p.
    q = [sum(head.rot[i, j] * offsets[j] for j in range(3)) / head.radii[i] ** 2 for i in range(3)]
    normal = [sum(head.rot[i, j] * q[i] for i in range(3)) for j in range(3)]
    beam = [np.zeros_like(y), y - apex_y, x]  # in-plane beam from the apex
    dot = sum(n * b for n, b in zip(normal, beam, strict=True))
    norms = np.sqrt(sum(n**2 for n in normal)) * np.sqrt(sum(b**2 for b in beam)) + 1e-9
    return np.abs(dot) / norms


def _shadowing(grid: Grid, atten: NDArray, sector: _Sector) -> NDArray[np.float64]:
    """exp(−∫ attenuation) along each beam, integrated in polar coordinates per slice."""
    width = grid.shape[2]
    # One pixel radially, two pixels across at mid-depth: shadows are smooth across the beam.
    step = grid.spacing[1]
    apex_y, alpha, r_min = sector.apex_y, sector.alpha, sector.r_min
    radii = np.arange(r_min, sector.r_max + step, step)
    angles = np.linspace(-alpha, alpha, max(width // 2, 64))
    rr, tt = np.meshgrid(radii, angles, indexing="ij")
    rows = (apex_y + rr * np.cos(tt) - grid.y[0]) / grid.spacing[1]
    cols = (rr * np.sin(tt) - grid.x[0]) / grid.spacing[2]
    r, theta = (v[0] for v in sector.polar(grid))
    r_index = (r - r_min) / step
    t_index = (theta + alpha) / (2 * alpha) * (angles.size - 1)
    out = np.empty(grid.shape)
    for k in range(grid.shape[0]):
        polar = ndimage.map_coordinates(atten[k], [rows, cols], order=1, mode="nearest")
        optical = np.cumsum(polar, axis=0) * step
        out[k] = ndimage.map_coordinates(optical, [r_index, t_index], order=1, mode="nearest")
    return np.clip(np.exp(-out), 0.08, 1.8)


def _speckle(rng: np.random.Generator, grid: Grid) -> NDArray[np.float64]:
    """Rayleigh-distributed, spatially correlated speckle with unit mean square."""
    sigma = [PSF_MM[2] / grid.spacing[0], PSF_MM[0] / grid.spacing[1], PSF_MM[1] / grid.spacing[2]]
    if grid.shape[0] == 1:
        sigma[0] = 0.0
    real, imag = (ndimage.gaussian_filter(rng.standard_normal(grid.shape), sigma) for _ in "ri")
    power = real**2 + imag**2
    return np.sqrt(power / power.mean())
