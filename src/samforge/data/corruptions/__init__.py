"""The 12 image corruptions of RobustMedSAM, each with a five-level severity ladder.

RobustMedSAM fine-tunes SAM's mask decoder on pairs of clean and degraded images. The
degradations come in four groups: modality-agnostic (Gaussian noise, Gaussian blur, contrast,
brightness), ultrasound (speckle, salt-and-pepper), MRI (Rician, Rayleigh, step motion) and
CT/X-ray (Poisson); JPEG compression and colour jitter complete the twelve (we file them under
``image_pipeline``: they happen after acquisition, to any modality). The paper uses one fixed
setting per type; we add a ladder of five severities around it.

**Severity 3 is the paper's setting** (and the default)::

    name             ladder parameter      1        2        3 = paper   4        5
    gaussian_noise   noise std σ           6        10       16          24       32
    gaussian_blur    kernel sizes k        3        5        7/9/11/13   15/17    19/21/23
    contrast         range of f            1.2–1.3  1.4–1.5  1.6–1.7     1.8–1.9  2.0–2.2
    brightness       range of f            .85–.95  .75–.85  0.6–0.8     .45–.55  0.3–0.4
    jpeg             quality range         25–35    12–20    5–10        3–4      1–2
    color_jitter     scale of the ranges   0.25     0.5      1           1.2      1.4
    poisson          photons λ             200      80       25          10       4
    speckle          noise std σ           0.15     0.3      0.5         0.7      0.9
    salt_and_pepper  pixel fraction p      0.02     0.05     0.10        0.20     0.30
    rician           noise std σ           8        15       25          35       50
    rayleigh         scale s               12       25       40          55       70
    step_motion      shift d (pixels)      1.5      3        5           8        12

(colour jitter: brightness, contrast, saturation and hue ranges are scaled together; the hue
range stays capped at 0.5, a full half turn of the colour wheel.)

Formulas (x: clean image on 0–255; n: standard normal; all results clipped to [0, 255]):

- gaussian_noise: x + σ·n, per pixel and channel.
- gaussian_blur: Gaussian kernel of size k and OpenCV's default σ = 0.3·((k−1)/2 − 1) + 0.8
  (the reference calls ``cv2.GaussianBlur(img, (k, k), 0)``), mirrored borders.
- contrast / brightness: the formulas above with one factor f per image.
- jpeg: encode and decode with Pillow (libjpeg, 4:2:0 chroma subsampling for colour).
- color_jitter: torchvision's ``ColorJitter`` semantics: brightness factor uniform in
  [1−b, 1+b], contrast in [1−c, 1+c] (blend with the mean grey level), saturation in [1−s, 1+s]
  (blend with the grey image), hue shift uniform in [−h, h] turns (in HSV), applied in a random
  order, clamping to the valid range after each step. Grey images (H, W) get brightness and
  contrast only, as torchvision does for one-channel images.
- poisson: Poisson(x/255·λ)/λ·255, so the expected value is x and the variance 255·x/λ
  (the reference's Poisson(x/255·25)/25, rescaled back to 0–255).
- speckle: x + x·σ·n (variance ∝ x²).
- salt_and_pepper: each pixel (all its channels) is replaced with probability p, by 255 or 0
  with equal odds.
- rician: √((x + σ·n₁)² + (σ·n₂)²), the magnitude of a complex signal with Gaussian noise in both
  channels; biased upwards in dark areas.
- rayleigh: x + s·(R − √(π/2)), R standard Rayleigh: additive noise with zero mean.
- step_motion: the object moves by d pixels halfway through the acquisition: the k-space rows of
  non-negative phase-encoding frequency (half of them, the rows after the centre, as in the
  reference) get the phase ramp of that shift; the image is the magnitude of the inverse FFT.
  Ghosts spread along the phase-encoding axis (axis 0: up and down the image).

Randomness: ``np.random.default_rng(seed)``. Every level draws the same random numbers in the
same order and only scales them ("common random numbers"), so for one seed a higher level is a
stronger version of the same degradation, and the ladder is monotone image by image, not just
on average (except for Poisson and JPEG, whose randomness cannot be shared that way).

Where we differ from the reference code (RobustMedSAM ``data/augment.py``), on purpose:

- uint8 results are rounded to nearest; the reference truncates (``astype(np.uint8)``), which
  darkens every corrupted image by half a grey level on average.
- salt-and-pepper hits exactly a fraction p of the pixels in expectation; the reference draws
  positions with replacement, so slightly fewer distinct pixels.
- step motion uses the centred frequencies for the phase ramp; the reference's ramp on the
  shifted spectrum adds a constant phase of π·d (a sign flip for odd d) to the moved half, which
  is not a translation. The direction of the motion is drawn per seed; the reference always
  moves along x.
- colour jitter follows torchvision (hue ≤ 0.5) where the reference calls albumentations with
  hue 0.7 (which albumentations clips to 0.5).
- JPEG through Pillow instead of OpenCV: both use libjpeg's quality scaling.
"""

from .apply import corrupt, corrupt_volume, corrupt_with_params
from .kinds import CORRUPTIONS
from .record import PAPER_SEVERITY, SEVERITIES, Corruption
from .selection import (
    CORRUPTION_GROUPS,
    corruptions_for_modality,
    get_corruption,
    resolve_corruption_names,
)

__all__ = [
    "CORRUPTIONS",
    "CORRUPTION_GROUPS",
    "PAPER_SEVERITY",
    "SEVERITIES",
    "Corruption",
    "corrupt",
    "corrupt_volume",
    "corrupt_with_params",
    "corruptions_for_modality",
    "get_corruption",
    "resolve_corruption_names",
]
