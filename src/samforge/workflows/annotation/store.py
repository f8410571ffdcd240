"""A document's annotations on disk, written on every change, so that a refresh, a restart
or a crash loses nothing.

Layout of a document folder::

    document.json          where the case comes from and how it was opened (the caller's)
    objects.json           every object's record (name, colour, status, prompts) and next id
    masks/<id>/<slice>.png each non-empty slice of each object's mask (0/1, 8-bit PNG)

Every file is written atomically (:mod:`samforge.files`), masks before ``objects.json``;
files of objects that ``objects.json`` does not list are ignored when reading. Only JSON
and PNG are written: nothing here is ever unpickled.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...data import read_label_array
from ...data.writers import write_image
from ...errors import DataError
from ...files import write_text_atomically
from .history import Change
from .objects import ObjectInfo

FORMAT = "samforge-annotations/1"


class DocumentStore:
    """Reads and writes one document folder (created when first written)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @property
    def objects_file(self) -> Path:
        return self.folder / "objects.json"

    @property
    def meta_file(self) -> Path:
        return self.folder / "document.json"

    def mask_file(self, object_id: int, index: int) -> Path:
        return self.folder / "masks" / str(object_id) / f"{index}.png"

    def write_meta(self, meta: dict[str, Any]) -> None:
        write_json(self.meta_file, {"format": FORMAT, **meta})

    def read_meta(self) -> dict[str, Any]:
        return read_json(self.meta_file)

    def write_change(self, change: Change, objects: Sequence[ObjectInfo], next_id: int) -> None:
        """Write the slices ``change`` touched, then every object's record."""
        for index, mask in change.masks_after.items():
            path = self.mask_file(change.object_id, index)
            if mask is None:
                path.unlink(missing_ok=True)
            else:
                write_image(path, mask.astype(np.uint8))
        if change.after is None:
            shutil.rmtree(self.folder / "masks" / str(change.object_id), ignore_errors=True)
        payload = {"next_id": next_id, "objects": [info.to_json() for info in objects]}
        write_json(self.objects_file, payload)

    def read_annotations(
        self,
    ) -> tuple[list[ObjectInfo], dict[int, dict[int, np.ndarray]], int]:
        """(objects, object id -> slice -> mask, next id); nothing yet: ([], {}, 1)."""
        if not self.objects_file.is_file():
            return [], {}, 1
        data = read_json(self.objects_file)
        try:
            objects = [ObjectInfo.from_json(item) for item in data["objects"]]
            next_id = int(data["next_id"])
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(
                f"{self.objects_file} is not a samforge annotation file: {error}."
            ) from None
        masks: dict[int, dict[int, np.ndarray]] = {}
        for info in objects:
            folder = self.folder / "masks" / str(info.id)
            slices = {}
            for path in folder.glob("*.png"):
                if path.stem.isdigit():
                    slices[int(path.stem)] = read_label_array(path) > 0
            masks[info.id] = slices
        return objects, masks, next_id


def write_json(path: Path, data: Any) -> None:
    write_text_atomically(path, json.dumps(data, indent=1, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path} does not exist.") from None
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read {path} as JSON: {error}.") from None
