"""Uploads: one image (PNG/TIFF/JPEG, NIfTI, a DICOM file) or the files of one DICOM series.

The body's size is checked from its Content-Length before anything is read, the number of
files and the size of each part by the multipart parser, and the voxel count from the
headers once the files are on disk. Files land in a hidden folder first and the folder is
renamed into place only when every check passed, so a refused or broken upload leaves
nothing behind.
"""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path

from starlette.datastructures import UploadFile
from starlette.requests import Request

from ..data.readers._common import IMAGE_SUFFIXES, is_dicom_file
from ..errors import DataError, LimitError
from ..files import suffix_of
from .limits import check_upload_size, check_voxels
from .settings import ServerSettings

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
CHUNK = 1 << 20


async def receive_upload(
    request: Request, folder: Path, settings: ServerSettings
) -> tuple[Path, str]:
    """Write the request's files into a new folder under ``folder``.

    Returns:
        (the new folder, a display name: the first file's name).

    Raises:
        LimitError: too many bytes, files or voxels (the message names the cap).
        DataError: no file, or a file that is not an image this annotator reads.
    """
    length = request.headers.get("content-length")
    check_upload_size(int(length) if length and length.isdigit() else None, settings)
    try:
        form = await request.form(
            max_files=settings.max_files, max_fields=16, max_part_size=settings.max_upload_bytes
        )
    except Exception as error:  # the parser's refusals (too many files, bad encoding)
        raise LimitError(f"the upload could not be read: {error}.") from None
    files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    if not files:
        raise DataError("the upload holds no file: send the image as the form field 'files'.")
    target = folder / secrets.token_hex(8)
    staging = folder / f".{target.name}.partial"
    staging.mkdir(parents=True)
    try:
        names = [await _write_part(part, staging, number) for number, part in enumerate(files)]
        _check_kinds(staging, names)
        check_voxels(_opened_path(staging, names), settings, files[0].filename or "the upload")
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        await form.close()
    return target, files[0].filename or names[0]


async def _write_part(part: UploadFile, folder: Path, number: int) -> str:
    name = _SAFE_NAME.sub("_", Path(part.filename or "").name).lstrip(".") or f"file{number}"
    if (folder / name).exists():
        name = f"{number}_{name}"
    with open(folder / name, "wb") as out:
        while chunk := await part.read(CHUNK):
            out.write(chunk)
    return name


def _check_kinds(folder: Path, names: list[str]) -> None:
    if len(names) == 1:
        if suffix_of(folder / names[0]) not in IMAGE_SUFFIXES and not is_dicom_file(
            folder / names[0]
        ):
            raise DataError(
                f"{names[0]!r} is not an image this annotator opens: upload a PNG, TIFF, "
                "JPEG, NIfTI (.nii, .nii.gz) or DICOM file, or the files of one DICOM series."
            )
        return
    not_dicom = [name for name in names if not is_dicom_file(folder / name)]
    if not_dicom:
        raise DataError(
            f"several files are uploaded as one DICOM series, but {not_dicom[:3]} are not "
            "DICOM: upload other images one at a time."
        )


def _opened_path(folder: Path, names: list[str]) -> Path:
    return folder / names[0] if len(names) == 1 else folder
