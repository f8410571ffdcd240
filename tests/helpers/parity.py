"""One prompt through a reference ``SamPredictor`` (official SAM, MobileSAM: the same API)
and samforge's ``Predictor``, for the parity tests."""

from __future__ import annotations

import numpy as np


def run_both(reference_predictor, predictor, prompt: dict, multimask: bool, mask=None):
    """(reference's ``(logits, iou, low_res)``, samforge's ``Prediction``) of one prompt
    given as ``point_coords``/``point_labels``/``box`` in original-image pixels."""
    reference = reference_predictor.predict(
        point_coords=None if "point_coords" not in prompt else np.array(prompt["point_coords"]),
        point_labels=None if "point_labels" not in prompt else np.array(prompt["point_labels"]),
        box=None if "box" not in prompt else np.array(prompt["box"]),
        mask_input=mask,
        multimask_output=multimask,
        return_logits=True,
    )
    ours = predictor.predict(
        points=prompt.get("point_coords"),
        labels=prompt.get("point_labels"),
        boxes=prompt.get("box"),
        mask_input=mask,
        multimask=multimask,
        return_logits=True,
    )
    return reference, ours
