"""3D phantoms drawn with far more variety than :func:`make_phantom`'s defaults, one per seed.

Training for 3D propagation sees a new volume every step (issue 19), and evaluation needs
volumes the training never drew: :func:`varied_volume` turns one seed into one volume whose
every property is drawn from it:

- the modality (CT, MR or ultrasound anatomy and appearance: the abdomen in HU or T1
  magnitude, the fetal head in B-mode), and so the organs' shapes, sizes and contrasts,
  which the phantom generator already draws per seed;
- the volume's size: 12–40 slices of 80–256 × 80–256 pixels, rows and columns drawn
  apart (non-square slices move the organs' relative sizes and the padding);
- anisotropic spacing: every k-th slice kept (k in 1..3), as thick-slice CT and MR are
  acquired, so objects change more between neighbouring slices;
- orientation: flips of each in-plane axis and of the slice order, so propagation runs
  both ways over every shape.

Intensity appearance beyond the modality (noise, blur, contrast) is the training data's
job (:mod:`samforge.training.volume_slices` applies the RobustMedSAM corruptions), since it
acts on the 0–255 image the model sees. Training draws seeds from
:data:`TRAINING_SEEDS`; evaluation takes seeds below it, so the two never meet.
"""

from __future__ import annotations

import numpy as np

from ..record import Case
from . import as_case, make_phantom

VOLUME_MODALITIES: tuple[str, ...] = ("ct", "mr", "us")
# Seeds of training volumes are drawn from [TRAINING_SEEDS, 2·TRAINING_SEEDS); held-out
# evaluation uses seeds below TRAINING_SEEDS (the model card: 5000 on).
TRAINING_SEEDS = 2**30
SLICES = (12, 40)  # before slice thinning: at least 4 slices remain
IN_PLANE = (80, 256)
MAX_SLICE_STEP = 3


def varied_volume(seed: int, modalities: tuple[str, ...] = VOLUME_MODALITIES) -> Case:
    """The (D, H, W) phantom volume of ``seed`` (see the module docstring), named
    ``varied_<modality>_<seed>``; its spacing records the kept slices' distance."""
    rng = np.random.default_rng([seed, 19])
    modality = str(modalities[int(rng.integers(len(modalities)))])
    depth = int(rng.integers(SLICES[0], SLICES[1] + 1))
    height, width = (int(n) for n in rng.integers(IN_PLANE[0], IN_PLANE[1] + 1, size=2))
    step = int(rng.integers(1, MAX_SLICE_STEP + 1))
    image, label, info = make_phantom(modality, shape=(depth, height, width), seed=seed)
    flips = rng.random(3) < 0.5
    in_plane = [slice(None, None, -1 if flip else 1) for flip in flips[1:]]
    view = (slice(None, None, -step if flips[0] else step), *in_plane)
    image, label = np.ascontiguousarray(image[view]), np.ascontiguousarray(label[view])
    spacing = (info["spacing"][0] * step, *info["spacing"][1:])
    # The flipped, thinned array no longer matches the generator's affine: leave it out.
    changed = {**info, "spacing": spacing, "affine": None}
    case = as_case((image, label, changed), f"varied_{modality}_{seed}")
    case.meta["slice_step"] = step
    return case
