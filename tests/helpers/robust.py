"""The ``robust_segment_anything`` reference for tests (from :mod:`samforge.testing`).

An optional reference: the tests that import this module are skipped when it is missing.
"""

from __future__ import annotations

import pytest

from samforge.testing import ReferenceUnavailableError
from samforge.testing.robust import (
    build_robust_sam,
    import_robust_segment_anything,
    reference_decode,
)

try:
    import_robust_segment_anything()
except ReferenceUnavailableError as error:
    pytest.skip(str(error), allow_module_level=True)

__all__ = ["build_robust_sam", "reference_decode"]
