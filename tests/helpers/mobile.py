"""MobileSAM's ``mobile_sam`` reference for tests (from :mod:`samforge.testing`).

An optional reference: the tests that import this module are skipped when it is missing.
"""

from __future__ import annotations

import pytest

from samforge.testing import ReferenceUnavailableError
from samforge.testing.mobile import build_mobile_sam, import_mobile_sam, mobile_sam_predictor

try:
    import_mobile_sam()
except ReferenceUnavailableError as error:
    pytest.skip(str(error), allow_module_level=True)

__all__ = ["build_mobile_sam", "import_mobile_sam", "mobile_sam_predictor"]
