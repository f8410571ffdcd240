"""Chest radiograph (PA) phantom: a projection of line integrals through a simple thorax.

Each structure contributes its thickness along the beam: the chest is an elliptic cylinder
of soft tissue, the lungs are deformed ellipsoids of air inside it, the heart displaces lung,
ribs, clavicles and the spine add bone. The detector sees ``N₀·exp(−Σ μ·t)`` photons with
Poisson noise, blurred by the detector and by scatter; the image is the estimated line
integral ``−log(I/N₀)`` on 12 bits, so dense structures are bright, as radiographs are
displayed. Rows run from head to feet; the patient's right is on the image's left.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ._geometry import Grid, Tube, bezier, paint, pick_inside, placed, random_blob

LABELS = {1: "lung_right", 2: "lung_left", 3: "heart", 4: "clavicle", 5: "nodule"}

FOV_MM = (430.0, 400.0)  # smallest field of view (rows, columns): a 43 cm detector
MU_SOFT = 0.021  # 1/mm, water at about 60 keV
MU_BONE = 0.045  # 1/mm, extra attenuation of bone over soft tissue
PHOTONS = 20000.0  # per pixel without attenuation
MAX_LINE_INTEGRAL = 7.0  # maps to 4095


def spacing_for(shape: tuple[int, int, int]) -> tuple[float, float, float]:
    """(dz, dy, dx) mm: square pixels; the chest fits in any aspect ratio (dz is unused)."""
    pixel = max(FOV_MM[0] / shape[1], FOV_MM[1] / shape[2])
    return (1.0, pixel, pixel)


def build(
    rng: np.random.Generator, grid: Grid
) -> tuple[NDArray[np.uint16], NDArray[np.uint8], dict]:
    """(radiograph uint16, label map uint8, noise description), shapes (1, H, W)."""
    u = rng.uniform
    _, y, x = grid.coords(grid.full())  # y: rows, head to feet; x: patient's left
    label = np.zeros(grid.shape, dtype=np.uint8)

    # Chest wall: elliptic cylinder narrowing to the neck above the shoulders.
    shoulder_y = -u(150, 175)
    width = u(140, 165) + (u(45, 60) - 150.0) / (1.0 + np.exp((y - shoulder_y + 15) / 8.0))
    depth = np.where(y < shoulder_y - 15, 55.0, u(100, 120))
    soft = 2.0 * depth * np.sqrt(np.clip(1.0 - (x / width) ** 2, 0.0, None))
    soft = np.broadcast_to(soft, grid.shape).copy()
    air = np.zeros(grid.shape)
    bone = np.zeros(grid.shape)

    # Lungs: deformed ellipses in the image plane with an AP depth; the mediastinum between.
    lungs = []
    for side, value in ((-1.0, 1), (1.0, 2)):
        blob = random_blob(
            rng,
            (0.0, u(-35, -10), side * u(68, 82)),
            (u(70, 90), u(120, 145), u(52, 66)),
            yaw=side * u(0.0, 0.12),
            deform=0.15,
            frequency=1.6,
        )
        box, level = placed(blob.evaluate(grid))
        inside = (level < 1.0) & (np.abs(grid.coords(box)[2]) > u(12, 18))
        thickness = 2.0 * blob.radii[0] * np.sqrt(np.clip(1.0 - level**2, 0.0, None))
        air[box] += np.where(inside, thickness, 0.0)
        paint(label, value, box, inside)
        lungs.append(value)

    # Heart: overlaps the left lung and the mediastinum; it displaces lung (less air).
    heart = random_blob(
        rng,
        (0.0, u(35, 60), u(25, 40)),
        (u(50, 65), u(55, 70), u(60, 75)),
        yaw=u(-0.6, -0.3),
        deform=0.06,
    )
    box, level = placed(heart.evaluate(grid))
    inside = level < 1.0
    heart_thickness = 2.0 * heart.radii[0] * np.sqrt(np.clip(1.0 - level**2, 0.0, None))
    air[box] = np.maximum(air[box] - np.where(inside, heart_thickness, 0.0), 0.0)
    paint(label, 3, box, inside)

    # A gas bubble in the stomach under the left hemidiaphragm.
    bubble = random_blob(rng, (0.0, u(125, 150), u(60, 90)), (20.0, u(12, 20), u(18, 28)))
    hit = bubble.evaluate(grid)
    if hit is not None:
        air[hit[0]] += np.where(
            hit[1] < 1.0, 30.0 * np.sqrt(np.clip(1 - hit[1] ** 2, 0, None)), 0.0
        )

    # Ribs (unlabelled): posterior arcs, fainter anterior arcs; distance to rasterised centrelines.
    bone += _ribs(rng, grid, shoulder_y)

    # Spine behind the mediastinum: vertebral bodies with a periodic disc pattern.
    period = u(24, 30)
    vertebrae = 0.6 + 0.4 * (np.cos(2 * math.pi * (y - u(0, period)) / period) > -0.6)
    spine = 2.0 * np.sqrt(np.clip(18.0**2 - x**2, 0.0, None)) * vertebrae
    bone += np.broadcast_to(spine, grid.shape) * 0.8

    # Clavicles (labelled, two separate components): S-shaped tubes above the lungs.
    for side in (-1.0, 1.0):
        medial = np.array([0.0, shoulder_y + u(5, 20), side * u(18, 28)])
        lateral = np.array([0.0, shoulder_y - u(0, 15), side * u(140, 160)])
        middle = (medial + lateral) / 2 + np.array([0.0, u(-14, -4), 0.0])
        tube = Tube(bezier(np.stack([medial, middle, lateral])), _at_least(u(6, 8), grid))
        hit = tube.evaluate(grid)
        if hit is None:
            continue
        box, dist = hit
        inside = dist < tube.radius
        # Cortical bone, denser than the thin ribs: counted one and a half times.
        bone[box] += 3.0 * np.sqrt(np.clip(tube.radius**2 - dist**2, 0.0, None))
        paint(label, 4, box, inside)

    # Nodule: a small soft-tissue sphere inside one lung (not behind the heart).
    lung = label == lungs[int(rng.integers(0, 2))]
    radius = max(u(5, 12), 1.6 * grid.spacing[1])
    box = ndimage.find_objects(lung[0].astype(np.uint8))[0]  # search the lung's box only
    inner = pick_inside(rng, lung[0][box], grid.spacing[1:], radius + 4)
    index = (box[0].start + inner[0], box[1].start + inner[1])
    centre = (0.0, grid.y[index[0]], grid.x[index[1]])
    nodule = random_blob(rng, centre, (radius, radius, radius), deform=0.08)
    box, level = placed(nodule.evaluate(grid))
    sphere = 2.0 * radius * np.sqrt(np.clip(1.0 - level**2, 0.0, None))
    air[box] = np.maximum(air[box] - sphere, 0.0)
    paint(label, 5, box, level < 1.0)
    label[0][index] = 5

    line_integral = MU_SOFT * np.clip(soft - air, 0.0, None) + MU_BONE * bone
    primary = np.exp(-line_integral)
    # Scatter: a broad, low-frequency haze; detector blur about a pixel.
    scatter = _broad_blur(primary[0], 25.0 / grid.spacing[1])[None]
    primary = ndimage.gaussian_filter(primary, (0, 0.7, 0.7))
    counts = rng.poisson(PHOTONS * (0.85 * primary + 0.15 * scatter))
    measured = -np.log(np.maximum(counts, 1) / PHOTONS)
    image = np.clip(np.rint(measured / MAX_LINE_INTEGRAL * 4095.0), 0, 4095).astype(np.uint16)
    return image, label, {"type": "poisson", "photons": PHOTONS}


def _broad_blur(image: NDArray[np.float64], sigma: float) -> NDArray[np.float64]:
    """Gaussian blur of width ``sigma`` px as three box filters: cost independent of sigma."""
    width = max(round(math.sqrt(4.0 * sigma**2 + 1.0)), 1)
    for _ in range(3):
        image = ndimage.uniform_filter(image, width, mode="nearest")
    return image


def _at_least(radius: float, grid: Grid) -> float:
    return max(radius, 0.9 * max(grid.spacing[1], grid.spacing[2]))


def _ribs(rng: np.random.Generator, grid: Grid, shoulder_y: float) -> NDArray[np.float64]:
    """Bone thickness (mm) of twelve pairs of ribs, as arcs around rasterised centrelines."""
    u = rng.uniform
    _, height, width = grid.shape
    posterior = np.zeros((height, width), dtype=bool)
    anterior = np.zeros((height, width), dtype=bool)
    step = min(grid.spacing[1:]) * 0.5
    spacing = u(20, 25)
    for k in range(12):
        top = shoulder_y + 15 + k * spacing
        for side in (-1.0, 1.0):
            t = np.linspace(0.0, 1.0, int(300 / step))
            # Posterior rib: from the spine outwards, rising then falling along the chest wall.
            px = side * (18 + 135 * t)
            py = top - 18 * np.sin(math.pi * t * 0.9) + (30 + 2 * k) * t**2
            _raster(posterior, grid, py, px)
            # Anterior rib: from the lateral wall down towards the sternum.
            ax = side * (150 - 100 * t)
            ay = top + 25 + 55 * t + 10 * np.sin(math.pi * t)
            _raster(anterior, grid, ay, ax)
    # One distance transform for both sets; the nearest centreline pixel tells which set.
    dist, (rows, cols) = ndimage.distance_transform_edt(
        ~(posterior | anterior), sampling=grid.spacing[1:], return_indices=True
    )
    is_posterior = posterior[rows, cols]
    radius = np.where(is_posterior, 5.0, 4.0)
    weight = np.where(is_posterior, 1.0, 0.35)  # anterior ribs are thinner, partly cartilage
    return (weight * 2.0 * np.sqrt(np.clip(radius**2 - dist**2, 0.0, None)))[None]


def _raster(mask: NDArray[np.bool_], grid: Grid, ys: NDArray, xs: NDArray) -> None:
    rows = np.rint((ys - grid.y[0]) / grid.spacing[1]).astype(int)
    cols = np.rint((xs - grid.x[0]) / grid.spacing[2]).astype(int)
    keep = (rows >= 0) & (rows < mask.shape[0]) & (cols >= 0) & (cols < mask.shape[1])
    mask[rows[keep], cols[keep]] = True
