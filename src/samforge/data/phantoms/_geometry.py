"""Geometry shared by the phantoms: a voxel grid in millimetres, deformed blobs, bent tubes.

Everything is 3D internally; a 2D image is the grid's single slice at z = 0. Coordinates are
millimetres in patient (LPS) axes, centred on the array's centre: z (array axis 0) towards
the head, y (axis 1) towards the back, x (axis 2) towards the patient's left. Shapes are
evaluated only inside their bounding box, which keeps a 256² image in milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

Box = tuple[slice, slice, slice]
Coords = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]
# (box, a field on the box: a blob's level or a tube's distance)
Hit = tuple[Box, NDArray[np.float64]]


@dataclass(frozen=True)
class Grid:
    """Voxel centres (mm) along the array axes (z, y, x).

    Attributes:
        z, y, x: 1D coordinates of the voxel centres, ascending, centred on 0.
        spacing: (dz, dy, dx) in mm.
    """

    z: NDArray[np.float64]
    y: NDArray[np.float64]
    x: NDArray[np.float64]
    spacing: tuple[float, float, float]

    @classmethod
    def centred(cls, shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> Grid:
        axes = [
            (np.arange(n, dtype=np.float64) - (n - 1) / 2.0) * s
            for n, s in zip(shape, spacing, strict=True)
        ]
        dz, dy, dx = spacing
        return cls(axes[0], axes[1], axes[2], (float(dz), float(dy), float(dx)))

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.z.size, self.y.size, self.x.size)

    def box(self, low: NDArray[np.float64], high: NDArray[np.float64]) -> Box | None:
        """Index slices of the voxels whose centres lie in [low, high] (mm, (z, y, x))."""
        slices = []
        for axis, lo, hi in zip((self.z, self.y, self.x), low, high, strict=True):
            start, stop = np.searchsorted(axis, lo), np.searchsorted(axis, hi, side="right")
            if start >= stop:
                return None
            slices.append(slice(int(start), int(stop)))
        return (slices[0], slices[1], slices[2])

    def coords(self, box: Box) -> Coords:
        """Open (broadcastable) coordinate arrays of a box: shapes (d,1,1), (1,h,1), (1,1,w)."""
        return (
            self.z[box[0]][:, None, None],
            self.y[box[1]][None, :, None],
            self.x[box[2]][None, None, :],
        )

    def full(self) -> Box:
        return (slice(0, self.z.size), slice(0, self.y.size), slice(0, self.x.size))


def rotation(yaw: float, pitch: float = 0.0, roll: float = 0.0) -> NDArray[np.float64]:
    """(3, 3) rotation in (z, y, x): ``yaw`` turns in the image plane, pitch/roll tilt out of it.

    Rows are the rotated frame's axes, so ``R @ (p - c)`` gives a point in that frame.
    """
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    in_plane = np.array([[1, 0, 0], [0, cy, -sy], [0, sy, cy]])
    tilt_y = np.array([[cp, -sp, 0], [sp, cp, 0], [0, 0, 1]])
    tilt_x = np.array([[cr, 0, -sr], [0, 1, 0], [sr, 0, cr]])
    return in_plane @ tilt_y @ tilt_x


@dataclass(frozen=True)
class Blob:
    """An ellipsoid whose radius is modulated by a few smooth waves: an organ-like shape.

    The level ``s(p) = |q| / (1 + Σ a_k sin(ω_k·q + φ_k))`` with ``q = R (p − c) / radii`` is
    < 1 inside; ``s < t`` is the same shape shrunk by ``t``, which gives nested layers (fat
    under the skin, a skull's inner table, a kidney's medulla).
    """

    centre: NDArray[np.float64]  # (3,) mm
    radii: NDArray[np.float64]  # (3,) mm, along the blob's own axes
    rot: NDArray[np.float64]  # (3, 3)
    waves: NDArray[np.float64]  # (K, 3) wave vectors in unit-blob coordinates
    phases: NDArray[np.float64]  # (K,)
    amplitudes: NDArray[np.float64]  # (K,)

    def box(self, grid: Grid, scale: float = 1.0) -> Box | None:
        # Half-extent of the rotated ellipsoid along each grid axis, grown by the modulation.
        extent = np.sqrt(((self.rot * self.radii[:, None]) ** 2).sum(axis=0))
        reach = extent * (1.0 + float(np.abs(self.amplitudes).sum())) * scale
        return grid.box(self.centre - reach, self.centre + reach)

    def level(self, coords: Coords) -> NDArray[np.float64]:
        """s(p) on the box's coordinates; shape of the broadcast box."""
        oz, oy, ox = (c - c0 for c, c0 in zip(coords, self.centre, strict=True))
        # Fold rotation and radii into one matrix, and the waves into coefficients of the
        # offsets: every term below is a broadcast of 1D arrays, so each costs one pass.
        scaled = self.rot / self.radii[:, None]
        squared = 0.0
        for row in scaled:
            qi = row[0] * oz + row[1] * oy + row[2] * ox
            squared = squared + qi * qi
        modulation = 1.0
        for wave, phase, amplitude in zip(self.waves, self.phases, self.amplitudes, strict=True):
            v = wave @ scaled
            modulation = modulation + amplitude * np.sin(
                v[0] * oz + v[1] * oy + (v[2] * ox + phase)
            )
        return np.sqrt(squared) / modulation

    def evaluate(self, grid: Grid, scale: float = 1.0) -> Hit | None:
        """(box, level on the box), or None if the blob misses the grid."""
        box = self.box(grid, scale)
        if box is None:
            return None
        return box, self.level(grid.coords(box))


def placed(hit: Hit | None) -> Hit:
    """``hit`` of a shape that lies inside the grid by construction (a phantom's anatomy
    sits in a field of view fixed in millimetres, whatever the shape in pixels)."""
    if hit is None:
        raise RuntimeError("a shape placed inside the phantom's field of view misses it")
    return hit


def random_blob(
    rng: np.random.Generator,
    centre: tuple[float, float, float],
    radii: tuple[float, float, float],
    *,
    yaw: float = 0.0,
    tilt: float = 0.0,
    deform: float = 0.12,
    waves: int = 3,
    frequency: float = 2.0,
) -> Blob:
    """A blob with random smooth deformation (``deform``: total relative radius amplitude)."""
    wave_vectors = rng.normal(0.0, frequency, size=(waves, 3))
    amplitudes = deform * rng.uniform(0.3, 1.0, size=waves) / waves
    return Blob(
        centre=np.asarray(centre, dtype=np.float64),
        radii=np.asarray(radii, dtype=np.float64),
        rot=rotation(yaw, rng.uniform(-tilt, tilt), rng.uniform(-tilt, tilt)),
        waves=wave_vectors,
        phases=rng.uniform(0.0, 2.0 * math.pi, size=waves),
        amplitudes=amplitudes,
    )


@dataclass(frozen=True)
class Tube:
    """All points within ``radius`` of a polyline: a vessel, a pancreas, a clavicle."""

    points: NDArray[np.float64]  # (M, 3) centreline in mm, (z, y, x)
    radius: float

    def evaluate(self, grid: Grid, pad: float = 0.0) -> Hit | None:
        """(box, distance to the centreline in mm), or None if the tube misses the grid."""
        reach = self.radius + pad
        box = grid.box(self.points.min(axis=0) - reach, self.points.max(axis=0) + reach)
        if box is None:
            return None
        z, y, x = grid.coords(box)
        best = np.full(np.broadcast_shapes(z.shape, y.shape, x.shape), np.inf)
        for a, b in zip(self.points[:-1], self.points[1:], strict=True):
            d = b - a
            length2 = float(d @ d) or 1e-12
            t = np.clip(((z - a[0]) * d[0] + (y - a[1]) * d[1] + (x - a[2]) * d[2]) / length2, 0, 1)
            dist2 = (
                (z - a[0] - t * d[0]) ** 2 + (y - a[1] - t * d[1]) ** 2 + (x - a[2] - t * d[2]) ** 2
            )
            np.minimum(best, dist2, out=best)
        return box, np.sqrt(best)


def bezier(control: NDArray[np.float64], samples: int = 24) -> NDArray[np.float64]:
    """(samples, 3) points of the Bézier curve through ``control`` (n, 3) (de Casteljau)."""
    t = np.linspace(0.0, 1.0, samples)[:, None, None]
    points = np.broadcast_to(control, (samples, *control.shape)).copy()
    while points.shape[1] > 1:
        points = (1 - t) * points[:, :-1] + t * points[:, 1:]
    return points[:, 0]


def smooth_field(
    rng: np.random.Generator, shape: tuple[int, ...], sigma_px: tuple[float, ...]
) -> NDArray[np.float64]:
    """Gaussian-filtered white noise with unit standard deviation (periodic, via the FFT)."""
    white = rng.standard_normal(shape)
    axes = tuple(range(len(shape)))
    spectrum = np.fft.rfftn(white, axes=axes)
    freqs = [np.fft.fftfreq(n) for n in shape[:-1]] + [np.fft.rfftfreq(shape[-1])]
    transfer = np.ones(spectrum.shape)
    for axis, (f, sigma) in enumerate(zip(freqs, sigma_px, strict=True)):
        view = [1] * len(shape)
        view[axis] = f.size
        transfer = transfer * np.exp(-2.0 * (math.pi * sigma * f) ** 2).reshape(view)
    field = np.fft.irfftn(spectrum * transfer, s=shape, axes=axes)
    field -= field.mean()  # for very smooth fields the mean rivals the std
    std = field.std()
    return field / std if std > 0 else field


def pick_inside(
    rng: np.random.Generator, mask: NDArray[np.bool_], spacing: tuple[float, ...], margin: float
) -> tuple[int, ...]:
    """A random voxel of ``mask`` at least ``margin`` mm from its border (else the deepest)."""
    depth = ndimage.distance_transform_edt(mask, sampling=spacing)
    candidates = np.flatnonzero(depth >= margin)
    if candidates.size == 0:
        candidates = np.array([int(np.argmax(depth))])
    return tuple(int(i) for i in np.unravel_index(rng.choice(candidates), mask.shape))


def paint(target: NDArray, value: int | float, box: Box, inside: NDArray[np.bool_]) -> None:
    """``target[box][inside] = value`` (``inside`` broadcast to the box)."""
    view = target[box]
    view[np.broadcast_to(inside, view.shape)] = value
