"""The official ``segment_anything`` reference for tests (from :mod:`samforge.testing`).

Importing this module imports the package itself (a test that needs it fails loudly when
it is missing: it is a test dependency), so tests can use ``segment_anything`` directly.
"""

from __future__ import annotations

from samforge.testing.official import (
    OFFICIAL_ARCHITECTURES,
    build_official_sam,
    import_segment_anything,
    official_predictor,
    official_sam_from_state_dict,
    randomize_parameters,
)

segment_anything = import_segment_anything()

__all__ = [
    "OFFICIAL_ARCHITECTURES",
    "build_official_sam",
    "official_predictor",
    "official_sam_from_state_dict",
    "randomize_parameters",
    "segment_anything",
]
