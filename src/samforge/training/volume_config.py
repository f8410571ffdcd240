"""The ``data.volumes`` section: volumes whose slices train 3D propagation (issue 19).

Kept apart from :mod:`.config` so that the data code (:mod:`.volume_slices`) reads its
settings without the whole config module. See :mod:`.volume_slices` for what each item is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class VolumeFile(BaseModel):
    """A volume with its label map (NIfTI file, DICOM series folder; what ``read_case`` reads)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: Path
    label: Path
    modality: str | None = None


class VolumeSlicesConfig(BaseModel):
    """Where the training slices come from, and how their prompts are made.

    ``mode`` and ``box_extension`` are propagation's (:class:`PropagationSettings`; the
    defaults are its defaults); ``prompt_noise_px`` grows or shrinks the adjacent slice's
    label by up to that many pixels in half the items, since propagation prompts from the
    model's previous mask, never exactly the label. ``organ_ends`` keeps the organs of the
    prompting slice that are absent (or under ``min_size``) on the target slice, so the
    model learns where an organ ends (v2's recipe trained without them); ``p_end`` draws
    that many items among the slices past an organ's end, since few slices are.
    ``chain`` makes each item that many propagation steps in a row: the first prompted
    from the adjacent slice's label, each next from the model's own mask on the slice
    before, as propagation runs, so the model trains on its own errors (v2 and v3 trained
    on single steps, ``chain: 1``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: list[VolumeFile] = []
    mni152: bool = False  # nilearn's MNI152 template with its grey/white-matter labels
    phantoms: list[Literal["ct", "mr", "us"]] = ["ct", "mr", "us"]  # varied, new every item
    p_phantom: float = Field(0.5, ge=0.0, le=1.0)  # share of phantoms when there are files
    n_obj: int = Field(3, ge=1)
    min_size: int = Field(20, ge=1)  # pixels of the object on the prompting slice
    organ_ends: bool = True  # also the step past an organ's last slice (empty target)
    p_end: float = Field(0.0, ge=0.0, le=1.0)  # share of items drawn past an organ's end
    chain: int = Field(1, ge=1)  # propagation steps per item, from the model's own masks
    mode: Literal["box", "mask"] = "mask"  # per-object prompts of fixed shape batch together
    box_extension: float = Field(0.0, ge=0.0)
    prompt_noise_px: int = Field(1, ge=0)
    p_corrupt: float = Field(0.3, ge=0.0, le=1.0)  # one of the 12 corruptions, severity 1–5

    @model_validator(mode="after")
    def _has_a_source(self) -> VolumeSlicesConfig:
        if not (self.files or self.mni152 or self.phantoms):
            raise ValueError("give volume `files`, `mni152: true` or `phantoms` modalities")
        for entry in self.files:
            for path in (entry.image, entry.label):
                if not path.exists():
                    raise ValueError(
                        f"{path} does not exist; check the path (relative paths start from "
                        "the folder you run samforge in)"
                    )
        return self
