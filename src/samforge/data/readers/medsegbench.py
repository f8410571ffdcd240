"""MedSegBench: 35 2D datasets, one ``{name}_{size}.npz`` per dataset and size (128, 256,
512) on Zenodo, with arrays ``{split}_images`` (N, S, S[, 3]) uint8 and ``{split}_label``
(N, S, S) for the splits train, val and test.

Kuş & Aydin, Scientific Data 11, 2024 (doi 10.1038/s41597-024-04159-2); file names, Zenodo
records and MD5 checksums as published by the MedSegBench package. MedSegBench ships its own
train/val/test split: use ``split=`` rather than re-splitting (its images carry no subject ids).
"""

from __future__ import annotations

import hashlib
import struct
import urllib.error
import urllib.request
import zipfile
from functools import lru_cache, partial
from pathlib import Path
from typing import Literal

import numpy as np

from ...errors import DataError
from ...files import atomic_path
from ..record import Case, CaseList, CaseRef
from ._common import as_label_map, reading

SIZES = (128, 256, 512)
SPLITS = ("train", "val", "test")
_URL = "https://zenodo.org/records/{record}/files/{name}_{size}.npz?download=1"

# name, Zenodo record, modality, then the MD5 checksums of the 128, 256 and 512 files
_TABLE = """
kvasir               13358372 other 2c703d693d16437a2891f1aec900a1ea
    4ce7118decc9973a252e9a9dd6c1e47e f3ab71c25d07077c85b5d98cfe615f9d
isic2018             13358372 other a89f5259e99e146f1e983173ced69903
    03680ffc3fc8e0221f161d445c8a94d4 000a76e688e6d48543b9563a8c406ae4
drive                13358372 other 39582fd6528bdd7b66ed92c6dd9f26aa
    56f96cf647df7ba48c56586c8d0d2cf8 9182813e1f337e6207ce421847fb0b0b
chasedb1             13358372 other 55e391c5002493c77ceb912ef1070cbe
    d72833a2603872150a12b2763cfe454f 7c94b4d937474a52605cc5c46a092660
dca1                 13358372 xray  cf95012398d384bb82f53b84c8051df8
    1488e23fa62d49c6c275d634e78eac5b 020059b0e1d0afb8b5d41d7c8e48cd78
chuac                13358372 xray  8d3c9e695209c3268828b7e91dac8fed
    0d968dc7adf83f5f7348b88b807dbf14 e5dffcc711859e3b67fc9cfefe4f1372
wbc                  13359660 other 7336757d11cec155d3cb940d3ab92372
    5002dfde36536a9f04eeeae87e0631ec 30d13d8851d27731cdfb51e64cc4ea6b
idrib                13358372 other f008052164fa4cc79b34df984a0e3eac
    543c16d496b843655b65df6128474275 ed2f6550e8bb7b9b0ab82c457d9a30be
cellnuclei           13358372 other 65440774822a5d13e015915661cc9f6c
    bce679a41ed55486a0a5b0a7471f2b43 3fca3b448eb4985343d80fe0819ac4d6
pandental            13358372 xray  08a455cb39ddd0e80ac79c01a631fd4c
    bbf9aecae003ab868958c8bb66fdf534 6387bfe558ea9cabab80460ddb4f8112
bbbc010              13358372 other ee120b3e524d0e545cd0ef14a3a51769
    b4c4e7efab9cc6106557bf8925203203 b13cb2a52ff3705e8df1bd88cd1a7d54
dynamicnuclear       13358372 other d03dd5f0111572ded704088547cdd343
    23f77cfaa57f97379041cf5642d3ea7a a9fa203eea7adfae4d6221518a9a0a76
nuset                13358372 other fa00c1d07f70bebfde143cdd1fb71a0d
    adca30f019226ac54edfcf065b407d1c 0f8721a9df92da77ec1825c7917e6886
nuclei               13358372 other ed5f59ec7b70a44dbe5215a9adb39963
    b7039dba2f084063b33d89ea4ec90cb6 ac99716bd0d0d7ee886feb28ed5549b1
tnbcnuclei           13358372 other 011766acd5f140a7ad577b13b45b34ec
    5b2a8a2ef9d18971cc27c0c4529f0fcf 92189b8e385ab625a64ce9823ac354aa
monusac              13358372 other b8866d8ad0ed2bdcba7dd1bc82ea4e62
    4fd7301493f76c79de2fee37faa30fce 2b75fd1ba3b91586a2b0da1594a70d29
deepbacs             13358372 other 496516a356190d4d84e081224182583b
    5bd2d12a641fed6889a148cfb8ab4fd3 75c2299a6f7e2386d3342ced7e7827ca
brifiseg             13358372 other 8ad36916999769d94a98b838226fd589
    be00218d75aaa50624c63077e9efc843 aa1bda7ba872defaba2c8762af1987e7
busi                 13358372 us    68877751adef0ab639de73946aac0985
    198aea70968b71adf593b32c41a6e995 fab7550a6c5240e35da8ce5d31bc1c61
covid19radio         13358372 xray  49c72b01477c1656acd2842ec71df5fd
    f1b1de2f1a22d163f553d9b554c742ec 69c39062cd60a45cd8d0ed1a1b43e493
covidquex            13358372 xray  338a3118801d5cbcbb5986bb5178a7a2
    75861f1f34a4af16f1ab91d93b5518a0 ea1a64adbb57ca7a60373c1b244fcff6
cystoidfluid         13358372 other af9e66b097c3f78d3e1a5b88efdb85cf
    d1eadcfcc12fd560fcb52afc596422da e16c60557bd7ec391b5fffb7feb9d1e1
isic2016             13358372 other 4fcee7c35a990f25f2c82ad3ed2f4f54
    ee3fc6b5fffdc039e963ab21ff18e42e 344fea72eeb0870421c88140440831e9
polypgen             13358372 other ff777edab5fccb224d44426364eb384c
    325423a8bfaa582ffa283c95acce6992 43a05773a4ce5cece31bb63dfa7b897d
promise12            13358372 mr    879618db3641a09fa6bdec6be93e13c5
    f5dbdbfe05b80808c4d541a63f64521c 6943b242f5b8d65600fe6486eb71b483
robotool             13358372 other 6b7517c8637b44d11d9af7accdc3d3c8
    7e644bc28160db7e4af27b164844f136 72d142950626d71b1df5093ae56172a8
uwaterlooskincancer  13358372 other 46e18bc41733bf5750738e418b1c7cbb
    08636b16baf28a5bbbf40a664095a2b5 1bf86aae7d81853f973b8b7ccb8a048e
ultrasoundnerve      13358372 us    5180ca0d1f0654765d23bc30fc073e4a
    24bca8f55e20c46c4891ae0fc92421f2 9f6e4127e75595e9a63f0469af01a605
usforkidney          13358372 us    bc361af0f49f47a4d60b0717fb206661
    4425d8628061a254ba83659c76602f20 aad4fd208535c90d9a8bebe75714698c
yeaz                 13359660 other e114e0f00da84e5a8940bbf7e7e06e99
    e78c3fbb905650f7c86ecd11deec5569 7328e0783e758d5da76729d420116a25
bkai-igh             13358372 other 3197cdeb1a4b0d2bec47d7a8ea3afc8f
    3c27aa13dfa8e3039fcb173c0c62cef2 f0d977e33084307683475dbc160a3dc1
m2caiseg             13358372 other 1e56c9f134dd97612d5cb0d3cbc8dc6b
    e82a9d636914beea1516953aa1afbb23 3723c8d5acb9b046c70752847f3ed426
abdomenus            13358372 us    86b0bbd84f7df3726c29e6b605c83a72
    c2eb21d1a93d857c472b01a72a210030 6e46ed122fea25c7370d86073ea38188
fhpsaop              13358372 us    650747dbd726fb5560ca767af979537c
    db6f6aa47f03dd67d2f1d23d2ce7081e 337d11e705ae507d94fbc8f06bc15ae5
mosmedplus           13358372 ct    537e46abb7623a1c988ef49c32f66d7d
    9a5cc1ee6c714cd64783814df5d6ec63 15fa5aa86962803e93e6d683dcf329d5
"""
_FIELDS = _TABLE.split()
MEDSEGBENCH: dict[str, tuple[str, str, str, str, str]] = {
    name: (record, md5_128, md5_256, md5_512, modality)
    for name, record, modality, md5_128, md5_256, md5_512 in zip(*[iter(_FIELDS)] * 6, strict=True)
}


def medsegbench_url(name: str, size: int = 256) -> tuple[str, str]:
    """(download URL, MD5) of ``{name}_{size}.npz``."""
    record, *md5s, _ = _entry(name)
    if size not in SIZES:
        raise DataError(f"MedSegBench files come in sizes {SIZES}; got {size}.")
    return _URL.format(record=record, name=name, size=size), md5s[SIZES.index(size)]


def download_medsegbench(
    name: str, size: int = 256, dest: str | Path = "~/.medsegbench", timeout: float = 60.0
) -> Path:
    """Download ``{name}_{size}.npz`` into ``dest`` (checked against its MD5) and return it.

    A file already there with the right checksum is not downloaded again. The download goes
    to a temporary file that replaces the target only once its MD5 matches.

    Raises:
        DataError: unknown name or size; no network (the message gives the URL, the MD5 and
            where to put the file by hand); a checksum mismatch.
    """
    url, md5 = medsegbench_url(name, size)
    target = Path(dest).expanduser() / f"{name}_{size}.npz"
    if target.exists() and _md5(target) == md5:
        return target
    try:
        with (
            urllib.request.urlopen(url, timeout=timeout) as response,
            atomic_path(target) as temporary,
        ):
            digest = _save(response, temporary)
            if digest != md5:
                raise DataError(
                    f"the download of {url} has MD5 {digest}, expected {md5}: it is incomplete "
                    "or changed. Try again, or download it by hand and check it."
                )
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise DataError(
            f"cannot download MedSegBench {name}_{size}.npz from {url} ({error}). Without "
            f"network access, download that URL on another machine, check its MD5 is {md5}, "
            f"and put the file at {target}."
        ) from error
    return target


def open_medsegbench(path: Path, split: str | None = None, modality: str | None = None) -> CaseList:
    """Cases of one ``{name}_{size}.npz`` (all splits, or ``split`` only), loaded lazily."""
    name = path.name.removesuffix(".npz").rsplit("_", 1)[0]
    modality = modality or (MEDSEGBENCH[name][-1] if name in MEDSEGBENCH else "other")
    with reading(path, "a MedSegBench npz"), zipfile.ZipFile(path) as archive:
        members = set(archive.namelist())
    splits = SPLITS if split is None else (split,)
    refs = []
    for part in splits:
        images, labels = f"{part}_images.npy", f"{part}_label.npy"
        if images not in members or labels not in members:
            if split is not None:
                raise DataError(f"{path} has no arrays {part}_images and {part}_label.")
            continue
        count = _npz_shape(path, images)[0]
        _npz_shape(path, labels)  # refuses object arrays before anything is loaded
        for index in range(count):
            case_name = f"{name}_{part}_{index:05d}"
            loader = partial(_load, path, part, index, modality, case_name)
            refs.append(CaseRef(case_name, case_name, loader, str(path)))
    if not refs:
        raise DataError(f"{path} holds no {{split}}_images / {{split}}_label arrays.")
    return CaseList(refs, f"MedSegBench {path.name}")


def _entry(name: str) -> tuple[str, str, str, str, str]:
    if name not in MEDSEGBENCH:
        raise DataError(
            f"unknown MedSegBench dataset {name!r}; known: {', '.join(sorted(MEDSEGBENCH))}."
        )
    return MEDSEGBENCH[name]


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _save(response, target: Path) -> str:
    digest = hashlib.md5()
    with open(target, "wb") as handle:
        for block in iter(lambda: response.read(1 << 20), b""):
            digest.update(block)
            handle.write(block)
    return digest.hexdigest()


def _load(path: Path, split: str, index: int, modality: str, name: str) -> Case:
    image = np.array(_member(path, f"{split}_images.npy")[index])
    label = np.array(_member(path, f"{split}_label.npy")[index])
    if label.ndim == 3 and label.shape[-1] == 1:
        label = label[..., 0]
    label = as_label_map(label, path)
    if label.max(initial=0) == 255 and np.isin(label, (0, 255)).all():
        label = (label > 0).astype(np.uint8)
    meta = {"source": str(path), "split": split, "index": index, "modality_from": "MedSegBench"}
    return Case(image, label, (1.0, 1.0), None, modality, name, name, meta)


@lru_cache(maxsize=4)
def _member(path: Path, member: str) -> np.ndarray:
    """One array of an npz: memory-mapped when stored uncompressed, else loaded once."""
    with reading(path, "a MedSegBench npz"):
        mapped = _memmap_member(path, member)
        if mapped is not None:
            return mapped
        with np.load(path, allow_pickle=False) as archive:
            return archive[member.removesuffix(".npy")]


def medsegbench_splits(path: Path) -> tuple[str, ...]:
    """The splits whose image and label arrays ``path`` holds, in MedSegBench's order."""
    with reading(path, "a MedSegBench npz"), zipfile.ZipFile(path) as archive:
        members = set(archive.namelist())
    return tuple(s for s in SPLITS if {f"{s}_images.npy", f"{s}_label.npy"} <= members)


def _npz_shape(path: Path, member: str) -> tuple[int, ...]:
    """The shape of one member, from its header alone.

    Raises:
        DataError: the member holds Python objects (pickles), which samforge never loads.
    """
    with reading(path, "a MedSegBench npz"), zipfile.ZipFile(path) as archive:
        with archive.open(member) as handle:
            shape, _, dtype = _read_npy_header(handle)
    if dtype.hasobject:
        raise DataError(
            f"{path}: array {member.removesuffix('.npy')!r} holds Python objects (dtype "
            f"{dtype}), which can carry code; samforge loads only numeric arrays "
            "(allow_pickle=False). Re-save it with numeric arrays, e.g. np.stack(list_of_images)."
        )
    return shape


def _read_npy_header(handle) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    return np.lib.format.read_array_header_2_0(handle)


def _memmap_member(path: Path, member: str) -> np.ndarray | None:
    """A read-only memmap of an uncompressed (np.savez) member; None if compressed."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with archive.open(info) as handle:
            shape, fortran, dtype = _read_npy_header(handle)
            header_size = handle.tell()
    if dtype.hasobject:  # np.load refuses these itself (allow_pickle=False)
        raise DataError(
            f"{path}: array {member!r} holds Python objects; samforge never loads them."
        )
    with open(path, "rb") as raw:
        raw.seek(info.header_offset)
        local = raw.read(30)
    name_length, extra_length = struct.unpack("<HH", local[26:30])
    offset = info.header_offset + 30 + name_length + extra_length + header_size
    order: Literal["F", "C"] = "F" if fortran else "C"
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
