"""``open_dataset``: any supported dataset layout → a lazy list of cases.

Layouts (``layout="auto"`` picks the first that fits, in this order):

==============  ==========================================================================
``medsegbench`` a ``{name}_{size}.npz`` file (keys ``{split}_images``, ``{split}_label``)
``samed2d``     an ``image2label_*.json`` / ``label2image_*.json`` file, or a folder holding
                one (or one folder down)
``nnunet``      a folder with ``dataset.json`` and ``imagesTr/`` (nnU-Net v2 raw)
``hc18``        a folder (or its ``images/``) of ``NNN_HC.png`` with ``*_HC_Annotation.png``
``folders``     a folder with ``images/`` and ``masks/`` (or ``labels/``, ``annotations/``)
``dicom``       a folder of DICOM files: one case per series
``nifti``       a folder of ``.nii``/``.nii.gz`` volumes (``*_seg`` etc. are their labels)
``file``        one image file (any format ``read_case`` reads)
==============  ==========================================================================

Splits: MedSegBench files hold ``train``/``val``/``test`` arrays, nnU-Net folders
``imagesTr`` (``train``) and, with ``labelsTs``, ``imagesTs`` (``test``), SA-Med2D-20M
folders one index per split (``image2label_train.json``, ``label2image_test.json``).
:func:`dataset_splits` lists them and :func:`choose_split` picks the one a role asks for
(training sources ``train``, validation ``val``, evaluation ``test``) where it exists. The
other layouts have no splits: select their cases by subject.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from ...errors import DataError
from ...files import stem_of, suffix_of
from ..record import Case, CaseList, CaseRef
from . import dicom
from ._common import is_dicom_file
from .case import read_case
from .folders import open_image_mask_folders, open_nifti_folder, subject_from
from .hc18 import open_hc18
from .medsegbench import medsegbench_splits, open_medsegbench
from .nnunet import open_nnunet
from .samed2d import is_samed2d_index, open_samed2d, samed2d_splits

LAYOUTS = ("auto", "medsegbench", "samed2d", "nnunet", "hc18", "folders", "dicom", "nifti", "file")


def open_dataset(
    path: str | Path,
    *,
    layout: str = "auto",
    modality: str | None = None,
    split: str | None = None,
    subject_pattern: str | None = None,
) -> CaseList:
    """Open a dataset as a lazy sequence of :class:`~samforge.data.record.Case`.

    Nothing but file names (and for DICOM, headers) is read here; each case is loaded when
    indexed. ``result.names`` and ``result.subjects`` are available without loading.

    Args:
        path: the dataset folder or file (see the module table).
        layout: one of :data:`LAYOUTS`; "auto" detects it.
        modality: force the modality of every case (default: from the data, see ``read_case``).
        split: "train"/"test" for nnU-Net, "train"/"val"/"test" for MedSegBench, the split
            of the index files for SA-Med2D-20M (see :func:`dataset_splits`); default: all
            (nnU-Net: train).
        subject_pattern: regular expression whose group 1 (or whole match) in a case name is
            its subject id, for layouts whose file names hold it (folders, nnU-Net, NIfTI).

    Raises:
        DataError: the path does not exist or fits no layout (the message lists them).
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"{root} does not exist; check the path.")
    if root.name == "dataset.json" and root.is_file():
        root = root.parent  # an nnU-Net dataset given by its description file
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}.")
    if layout == "auto":
        layout = detect_layout(root)
    openers: dict[str, Callable[[], CaseList]] = {
        "medsegbench": partial(open_medsegbench, root, split, modality),
        "samed2d": partial(open_samed2d, root, modality, split),
        "nnunet": partial(open_nnunet, root, split, modality, 0, subject_pattern),
        "hc18": partial(open_hc18, root),
        "folders": partial(open_image_mask_folders, root, modality, subject_pattern),
        "dicom": partial(open_dicom_folder, root, modality),
        "nifti": partial(open_nifti_folder, root, modality, subject_pattern),
        "file": partial(_open_file, root, modality, subject_pattern),
    }
    return openers[layout]()


def detect_layout(root: Path) -> str:
    """The layout name of ``root`` (see the module table)."""
    if root.is_file():
        if suffix_of(root) == ".npz":
            return "medsegbench"
        if is_samed2d_index(root):
            return "samed2d"
        return "file"
    if any(is_samed2d_index(p) for pattern in ("*.json", "*/*.json") for p in root.glob(pattern)):
        return "samed2d"
    if (root / "dataset.json").is_file() and (root / "imagesTr").is_dir():
        return "nnunet"
    frames = root / "images" if (root / "images").is_dir() else root
    if any(frames.glob("*_HC.png")):
        return "hc18"
    if (root / "images").is_dir():
        return "folders"
    files = [p for p in sorted(root.iterdir()) if p.is_file()]
    if any(suffix_of(p) == ".npz" for p in files):
        raise DataError(f"{root} holds .npz files: open one MedSegBench file at a time.")
    if any(suffix_of(p) in (".nii", ".nii.gz") for p in files):
        return "nifti"
    if any(is_dicom_file(p) or suffix_of(p) == ".dcm" for p in files[:50]) or dicom.dicom_files(
        root
    ):
        return "dicom"
    raise DataError(
        f"cannot tell the dataset layout of {root}. samforge reads: images/ + masks/ (or "
        "labels/) folders, nnU-Net v2 raw datasets (dataset.json, imagesTr/, labelsTr/), "
        "folders of NIfTI volumes, DICOM series folders, MedSegBench .npz files, SA-Med2D-20M "
        "image2label_*.json indexes and HC18 folders. Pass layout=... to choose one."
    )


def dataset_splits(path: str | Path, layout: str = "auto") -> tuple[str, ...]:
    """The named splits of a dataset (see the module docstring); () for layouts without."""
    root = Path(path).expanduser()
    if root.name == "dataset.json" and root.is_file():
        root = root.parent
    if layout == "auto":
        layout = detect_layout(root)
    if layout == "medsegbench":
        return medsegbench_splits(root)
    if layout == "samed2d":
        return samed2d_splits(root)
    if layout == "nnunet":
        return ("train", "test") if (root / "labelsTs").is_dir() else ("train",)
    return ()


def choose_split(
    path: str | Path, layout: str, split: str | None, default: str | None
) -> str | None:
    """The split to open: ``split`` when given (it must exist), else ``default`` where the
    dataset has it, else None (the whole dataset; nnU-Net: imagesTr).

    Raises:
        DataError: ``split`` is given but the dataset has no such split (or no splits).
    """
    splits = dataset_splits(path, layout)
    if split is not None:
        if split not in splits:
            have = f"its splits are {', '.join(splits)}" if splits else "it has no named splits"
            raise DataError(
                f"{path} has no split {split!r}: {have}. Without named splits, choose cases "
                "by subject (a training source's `subjects`)."
            )
        return split
    return default if default in splits else None


def open_dicom_folder(root: Path, modality: str | None = None) -> CaseList:
    """One case per DICOM series found under ``root`` (any depth)."""
    groups = dicom.group_series(dicom.dicom_files(root))
    if not groups:
        raise DataError(f"{root} holds no DICOM images.")
    refs = []
    for index, files in enumerate(groups.values()):
        folder = files[0].parent
        name = folder.name if len(groups) == 1 else f"{folder.name}_{index:02d}"
        subject = dicom.patient_id(files[0]) or name
        loader = partial(_load_series, tuple(files), folder, modality, name, subject)
        refs.append(CaseRef(name, subject, loader, str(folder)))
    return CaseList(refs, f"DICOM folder {root}")


def _load_series(
    files: tuple[Path, ...], folder: Path, modality: str | None, name: str, subject: str
) -> Case:
    image, info = dicom.read_series(files, folder)
    meta = {"modality_from": "argument" if modality else "DICOM header", **info["meta"]}
    return Case(
        image,
        None,
        info["spacing"],
        info["affine"],
        modality or info["modality"],
        name,
        subject,
        meta,
    )


def _open_file(root: Path, modality: str | None, subject_pattern: str | None) -> CaseList:
    name = stem_of(root)
    subject = subject_from(name, subject_pattern)
    loader = partial(read_case, root, None, modality, name=name, subject=subject)
    return CaseList([CaseRef(name, subject, loader, str(root))], f"file {root}")
