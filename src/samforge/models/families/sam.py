"""Plain SAM: Meta's checkpoints and every fine-tune that keeps its architecture (MedSAM,
MedicoSAM, micro-sam, samforge's own models). It owns no module beyond SAM's and writes
SAM's official format, a bare state dict."""

from __future__ import annotations

from ..sam.model import Sam
from .record import ModelFamily

SAM = ModelFamily(name="SAM", family="sam", model_class=Sam)
