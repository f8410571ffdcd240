"""Test-support code shipped with samforge, like ``numpy.testing``.

Tests, benchmarks and anyone checking samforge against the reference implementations use
these modules; nothing else in samforge imports them.

- :mod:`samforge.testing.official`: the official ``segment_anything`` models built with any
  encoder size and random weights, and loaded from samforge state dicts.
- :mod:`samforge.testing.robust`: the same for RobustSAM's ``robust_segment_anything``, with
  a prompt-by-prompt reference decoder.
- :mod:`samforge.testing.mobile`: MobileSAM's ``mobile_sam`` package (TinyViT ``vit_t``)
  with random weights, its ``SamPredictor``, and the ``timm`` stand-in it needs.
- :mod:`samforge.testing.timing`: paired timing, the architecture choice of the
  benchmarks and a one-line description of the machine.

The reference packages are imported only when a reference is built; a missing one raises
:class:`ReferenceUnavailableError` with the ``pip install`` line that adds it.
"""

from .references import ReferenceUnavailableError

__all__ = ["ReferenceUnavailableError"]
