"""Abdominal phantom (axial slices, or a volume), rendered as CT in HU or as T1-weighted MR.

One random anatomy per seed: a body with subcutaneous fat and a muscle wall, bowel loops with
gas, psoas and back muscles, and eight labelled structures: a large liver with one or two
lesions inside it (nested objects), a spleen, two kidneys (separate from each other; the right
one touches the liver), a pancreas (a tube that bends in the axial plane), the aorta (a tube
along z that bends), and a vertebra (vertebral body and arch around the spinal canal; split
by discs into several pieces in 3D).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ._geometry import Grid, Tube, bezier, paint, pick_inside, placed, random_blob, smooth_field

LABELS = {
    1: "liver",
    2: "spleen",
    3: "kidney_right",
    4: "kidney_left",
    5: "aorta",
    6: "pancreas",
    7: "vertebra",
    8: "liver_lesion",
}


class Tissue(IntEnum):
    AIR = 0
    FAT = 1
    VISCERAL_FAT = 2
    MUSCLE = 3
    LIVER = 4
    SPLEEN = 5
    KIDNEY_CORTEX = 6
    KIDNEY_MEDULLA = 7
    VESSEL = 8
    CORTICAL_BONE = 9
    MARROW = 10
    LESION = 11
    PANCREAS = 12
    BOWEL = 13
    GAS = 14
    CSF = 15
    DISC = 16


# Portal-venous phase CT: (mean HU, texture amplitude HU).
CT_HU = {
    Tissue.AIR: (-1000, 0),
    Tissue.FAT: (-105, 8),
    Tissue.VISCERAL_FAT: (-95, 12),
    Tissue.MUSCLE: (50, 6),
    Tissue.LIVER: (105, 6),
    Tissue.SPLEEN: (115, 5),
    Tissue.KIDNEY_CORTEX: (185, 8),
    Tissue.KIDNEY_MEDULLA: (130, 8),
    Tissue.VESSEL: (170, 4),
    Tissue.CORTICAL_BONE: (900, 60),
    Tissue.MARROW: (260, 40),
    Tissue.LESION: (45, 6),
    Tissue.PANCREAS: (95, 10),
    Tissue.BOWEL: (35, 15),
    Tissue.GAS: (-950, 20),
    Tissue.CSF: (12, 4),
    Tissue.DISC: (85, 8),
}

# T1-weighted gradient echo (fat bright, flow voids in vessels): (mean, relative texture).
MR_T1 = {
    Tissue.AIR: (0, 0.0),
    Tissue.FAT: (920, 0.04),
    Tissue.VISCERAL_FAT: (860, 0.06),
    Tissue.MUSCLE: (300, 0.05),
    Tissue.LIVER: (470, 0.04),
    Tissue.SPLEEN: (360, 0.04),
    Tissue.KIDNEY_CORTEX: (420, 0.05),
    Tissue.KIDNEY_MEDULLA: (330, 0.05),
    Tissue.VESSEL: (70, 0.1),
    Tissue.CORTICAL_BONE: (60, 0.1),
    Tissue.MARROW: (600, 0.08),
    Tissue.LESION: (230, 0.05),
    Tissue.PANCREAS: (540, 0.05),
    Tissue.BOWEL: (260, 0.12),
    Tissue.GAS: (5, 0.0),
    Tissue.CSF: (140, 0.05),
    Tissue.DISC: (250, 0.05),
}

FOV_MM = (320.0, 420.0)  # smallest in-plane field of view (AP rows, lateral columns)
Z_EXTENT_MM = 240.0  # target craniocaudal coverage of a volume


def spacing_for(shape: tuple[int, int, int], is_volume: bool) -> tuple[float, float, float]:
    """(dz, dy, dx) mm: square pixels, the body fits in any aspect ratio; slices 0.5–5 mm."""
    in_plane = max(FOV_MM[0] / shape[1], FOV_MM[1] / shape[2])
    dz = float(np.clip(Z_EXTENT_MM / shape[0], 0.5, 5.0)) if is_volume else 5.0
    return (dz, in_plane, in_plane)


@dataclass
class _Scene:
    """Anatomy being painted: tissue classes, labels, and the landmarks later steps need."""

    rng: np.random.Generator
    grid: Grid
    tissue: NDArray[np.uint8]
    label: NDArray[np.uint8]
    rx: float = 0.0  # body half-width (mm)
    ry: float = 0.0  # body half-depth (mm)
    cavity: NDArray[np.bool_] = field(init=False)  # inside the abdominal wall (_body)
    spine_y: float = 0.0  # centre of the vertebral body (mm, towards the back)
    spine_r: float = 0.0
    aorta_y: float = 0.0

    def u(self, low: float, high: float) -> float:
        return float(self.rng.uniform(low, high))

    def fill(self, shape, kind: Tissue, value: int | None = None, threshold: float = 1.0) -> None:
        """Paint a blob (level < threshold) or tube (distance < radius) as tissue and label."""
        hit = shape.evaluate(self.grid)
        if hit is None:
            return
        box, field = hit
        inside = field < (shape.radius if isinstance(shape, Tube) else threshold)
        paint(self.tissue, kind, box, inside)
        if value is not None:
            paint(self.label, value, box, inside)


def build(rng: np.random.Generator, grid: Grid) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Random anatomy on ``grid``: (tissue map, label map), both (D, H, W) uint8.

    Painted back to front: later structures overwrite earlier ones, which is what makes
    organs touch (a kidney pressed against the liver) or nest (lesions in the liver).
    """
    scene = _Scene(
        rng,
        grid,
        np.full(grid.shape, Tissue.AIR, dtype=np.uint8),
        np.zeros(grid.shape, dtype=np.uint8),
    )
    _body(scene)
    _bowel(scene)
    _back_muscles(scene)
    _liver_and_spleen(scene)
    _pancreas(scene)
    _kidneys(scene)
    _vessels(scene)
    _spine(scene)
    # Organs stay inside the abdominal cavity (the body wall is not liver).
    outside = ~scene.cavity & np.isin(scene.label, (1, 2, 3, 4, 6))
    scene.label[outside] = 0
    scene.tissue[outside] = Tissue.MUSCLE
    for _ in range(int(rng.integers(1, 3))):
        _lesion(scene)
    return scene.tissue, scene.label


def _body(scene: _Scene) -> None:
    """One deformed elliptic cylinder; subcutaneous fat and the muscle wall are its layers."""
    u = scene.u
    scene.rx, scene.ry = 165.0 * u(0.88, 1.1), 118.0 * u(0.88, 1.1)
    body = random_blob(
        scene.rng, (0.0, 0.0, 0.0), (2000.0, scene.ry, scene.rx), deform=0.05, frequency=1.5
    )
    box, level = placed(body.evaluate(scene.grid))
    fat, wall = u(12, 28), u(8, 14)
    inner = 1.0 - (fat + wall) / scene.ry
    paint(scene.tissue, Tissue.FAT, box, level < 1.0)
    paint(scene.tissue, Tissue.MUSCLE, box, level < 1.0 - fat / scene.ry)
    paint(scene.tissue, Tissue.VISCERAL_FAT, box, level < inner)
    scene.cavity = np.zeros(scene.grid.shape, dtype=bool)
    paint(scene.cavity, True, box, level < inner)
    scene.spine_y = scene.ry * u(0.38, 0.48)
    scene.spine_r = u(17, 22)
    scene.aorta_y = scene.spine_y - scene.spine_r - u(13, 18)


def _bowel(scene: _Scene) -> None:
    """Bowel loops with gas pockets: unlabelled clutter that the organs are painted over."""
    u = scene.u
    for _ in range(int(scene.rng.integers(4, 8))):
        centre = (u(-40, 40), u(-0.7, 0.1) * scene.ry, u(-0.55, 0.55) * scene.rx)
        radii = (u(30, 60), u(14, 28), u(14, 28))
        loop = random_blob(scene.rng, centre, radii, yaw=u(0, math.pi), tilt=0.3, deform=0.2)
        hit = loop.evaluate(scene.grid)
        if hit is not None:
            box, level = hit
            paint(scene.tissue, Tissue.BOWEL, box, (level < 1.0) & scene.cavity[box])
            gas = (level < u(0.3, 0.6)) & (scene.tissue[box] == Tissue.BOWEL)
            paint(scene.tissue, Tissue.GAS, box, gas)


def _back_muscles(scene: _Scene) -> None:
    """Psoas beside the spine and the erector muscles behind it."""
    u, y, r = scene.u, scene.spine_y, scene.spine_r
    for side in (-1.0, 1.0):
        psoas = random_blob(
            scene.rng, (0.0, y - 5, side * (r + 22)), (120.0, u(16, 22), u(18, 26)), deform=0.08
        )
        erector = random_blob(
            scene.rng, (0.0, y + r + 30, side * 32), (150.0, u(20, 26), u(24, 32)), deform=0.06
        )
        scene.fill(psoas, Tissue.MUSCLE)
        scene.fill(erector, Tissue.MUSCLE)


def _liver_and_spleen(scene: _Scene) -> None:
    """1 liver: large, on the patient's right (x < 0); 2 spleen: posterior left."""
    u, rx, ry = scene.u, scene.rx, scene.ry
    liver = random_blob(
        scene.rng,
        (u(10, 30), -0.12 * ry, -0.38 * rx),
        (u(75, 95), 0.62 * ry * u(0.9, 1.1), 0.42 * rx * u(0.9, 1.1)),
        yaw=u(-0.3, 0.3),
        tilt=0.15,
        deform=0.16,
    )
    scene.fill(liver, Tissue.LIVER, 1)
    spleen = random_blob(
        scene.rng,
        (u(15, 40), 0.25 * ry, 0.64 * rx),
        (u(45, 60), u(36, 48), u(20, 28)),
        yaw=u(0.3, 0.8),
        tilt=0.2,
        deform=0.15,
    )
    scene.fill(spleen, Tissue.SPLEEN, 2)


def _pancreas(scene: _Scene) -> None:
    """6 pancreas: a tube bending through the axial plane from the spleen to the duodenum."""
    u, rx, ry, aorta_y = scene.u, scene.rx, scene.ry, scene.aorta_y
    control = np.array(
        [
            [u(-6, 6), 0.12 * ry + u(-8, 8), 0.5 * rx],
            [u(-4, 4), aorta_y - u(22, 32), 0.12 * rx + u(-10, 10)],
            [u(-6, 6), aorta_y - u(10, 25), -0.2 * rx + u(-8, 8)],
        ]
    )
    scene.fill(Tube(bezier(control), _at_least(u(8, 12), scene.grid)), Tissue.PANCREAS, 6)


def _kidneys(scene: _Scene) -> None:
    """3, 4 kidneys: either side of the spine, cortex around medulla; the right one meets
    the liver."""
    u = scene.u
    for side, value in ((-1.0, 3), (1.0, 4)):
        kidney = random_blob(
            scene.rng,
            (u(-30, -10), scene.spine_y + u(-8, 4), side * u(0.38, 0.46) * scene.rx),
            (u(45, 55), u(20, 26), u(26, 32)),
            yaw=side * u(0.2, 0.5),
            tilt=0.15,
            deform=0.08,
        )
        scene.fill(kidney, Tissue.KIDNEY_CORTEX, value)
        scene.fill(kidney, Tissue.KIDNEY_MEDULLA, threshold=u(0.55, 0.7))


def _vessels(scene: _Scene) -> None:
    """5 aorta, and the unlabelled inferior vena cava: tubes along z that bend."""
    u, grid = scene.u, scene.grid
    z = np.linspace(grid.z[0] - 10, grid.z[-1] + 10, 16)
    phase = scene.rng.uniform(0, 2 * math.pi, size=4)
    aorta_x = u(-6, 6)
    ivc_x = -scene.spine_r - u(12, 20)
    ivc = np.stack(
        [
            z,
            scene.aorta_y - 4 + 4 * np.sin(z / 50 + phase[2]),
            ivc_x + 6 * np.sin(z / 55 + phase[3]),
        ],
        axis=1,
    )
    aorta = np.stack(
        [z, scene.aorta_y + 5 * np.sin(z / 45 + phase[0]), aorta_x + 8 * np.sin(z / 60 + phase[1])],
        axis=1,
    )
    scene.fill(Tube(ivc, _at_least(u(9, 12), grid)), Tissue.VESSEL)
    scene.fill(Tube(aorta, _at_least(u(9, 12), grid)), Tissue.VESSEL, 5)


def _spine(scene: _Scene) -> None:
    """7 vertebra: body and arch with cortical rims around the canal, discs between levels."""
    u, grid, y, r = scene.u, scene.grid, scene.spine_y, scene.spine_r
    period, disc = u(28, 34), u(5, 8)
    disc_offset = u(0.5 * disc + 1, period - 0.5 * disc - 1)  # z = 0 lies inside a body
    vertebral_body = random_blob(scene.rng, (0.0, y, 0.0), (2000.0, r * 0.85, r), deform=0.04)
    arch = random_blob(scene.rng, (0.0, y + r + 14, 0.0), (2000.0, 15.0, 13.0), deform=0.03)
    for part in (vertebral_body, arch):
        box, level = placed(part.evaluate(grid))
        z = grid.coords(box)[0]
        in_disc = np.abs(np.mod(z - disc_offset, period) - period / 2) > period / 2 - disc / 2
        bone = (level < 1.0) & ~in_disc
        paint(scene.tissue, Tissue.CORTICAL_BONE, box, bone)
        paint(scene.tissue, Tissue.MARROW, box, (level < 1.0 - 2.5 / r) & ~in_disc)
        paint(scene.tissue, Tissue.DISC, box, (level < 1.0) & in_disc)
        paint(scene.label, 7, box, bone)
    ends = np.array([[grid.z[0] - 5, y + r + 11, 0.0], [grid.z[-1] + 5, y + r + 11, 0.0]])
    scene.fill(Tube(ends, u(6.5, 8.5)), Tissue.CSF, 0)  # the canal is not vertebra


def _at_least(radius: float, grid: Grid) -> float:
    """Keep thin structures at least one voxel across at coarse resolutions."""
    return max(radius, 0.9 * max(grid.spacing[1], grid.spacing[2]))


def _lesion(scene: _Scene) -> None:
    """8 liver lesion: a round hypodense spot centred inside the liver, clipped to it."""
    grid, label = scene.grid, scene.label
    liver = label == 1
    if not liver.any():
        return
    radius = max(scene.u(5, 16), 1.6 * max(grid.spacing[1], grid.spacing[2]))
    # Search inside the liver's bounding box only: the distance transform is the costly step.
    box = ndimage.find_objects(liver.astype(np.uint8))[0]
    inner = pick_inside(scene.rng, liver[box], grid.spacing, radius * 0.9)
    index = tuple(sl.start + i for sl, i in zip(box, inner, strict=True))
    centre = tuple(ax[i] for ax, i in zip((grid.z, grid.y, grid.x), index, strict=True))
    spot = random_blob(scene.rng, centre, (radius, radius, radius), deform=0.1)
    spot_box, level = placed(spot.evaluate(grid))
    inside = (level < 1.0) & (label[spot_box] == 1)
    paint(scene.tissue, Tissue.LESION, spot_box, inside)
    paint(label, 8, spot_box, inside)
    # Its centre voxel always belongs to it, however coarse the grid.
    label[index], scene.tissue[index] = 8, Tissue.LESION


def _tissue_values(
    table: Mapping[Tissue, tuple[float, float]], tissue: NDArray[np.uint8]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per voxel, the (mean, texture amplitude) that ``table`` gives its tissue."""
    mean = np.array([table[Tissue(t)][0] for t in range(len(Tissue))], dtype=np.float64)
    texture = np.array([table[Tissue(t)][1] for t in range(len(Tissue))], dtype=np.float64)
    return mean[tissue], texture[tissue]


def _texture_field(rng: np.random.Generator, grid: Grid) -> NDArray[np.float64]:
    """Tissue texture: a smooth random field, correlated over 2 mm across slices and 3 mm
    in-plane."""
    px = grid.spacing
    return smooth_field(rng, grid.shape, (2.0 / px[0], 3.0 / px[1], 3.0 / px[2]))


def _partial_volume(image: NDArray[np.float64], grid: Grid) -> NDArray[np.float64]:
    """The scanner's blur at tissue borders (across slices only in a volume)."""
    return ndimage.gaussian_filter(image, (0.35 if grid.shape[0] > 1 else 0.0, 0.6, 0.6))


def render_ct(
    rng: np.random.Generator, grid: Grid, tissue: NDArray[np.uint8]
) -> tuple[NDArray[np.int16], float]:
    """HU image (int16) and the noise σ used: texture, partial-volume blur, correlated noise."""
    mean, texture = _tissue_values(CT_HU, tissue)
    hu = _partial_volume(mean + texture * _texture_field(rng, grid), grid)
    sigma = float(rng.uniform(10.0, 20.0))
    # CT noise is correlated over about a pixel (reconstruction kernel).
    noise = ndimage.gaussian_filter(rng.standard_normal(grid.shape), (0.0, 0.7, 0.7))
    hu = hu + sigma * noise / noise.std()
    return np.clip(np.rint(hu), -1024, 3071).astype(np.int16), sigma


def render_mr(
    rng: np.random.Generator, grid: Grid, tissue: NDArray[np.uint8]
) -> tuple[NDArray[np.uint16], float]:
    """T1-weighted magnitude image (uint16): texture, coil bias field, Rician noise."""
    mean, texture = _tissue_values(MR_T1, tissue)
    signal = _partial_volume(mean * (1.0 + texture * _texture_field(rng, grid)), grid)
    # Receive-coil bias: a smooth multiplicative field, ±20–35 % across the body.
    px = grid.spacing
    bias = smooth_field(rng, grid.shape, (120.0 / px[0], 120.0 / px[1], 120.0 / px[2]))
    signal = signal * np.exp(rng.uniform(0.2, 0.35) * bias)
    sigma = float(rng.uniform(0.015, 0.035) * 900.0)
    n1, n2 = rng.standard_normal((2, *grid.shape))
    magnitude = np.hypot(signal + sigma * n1, sigma * n2)
    return np.clip(np.rint(magnitude), 0, 65535).astype(np.uint16), sigma
