"""Data layer: records, readers and writers, intensity normalisation, objects, splits and
the training Dataset (see ``io`` for the axis conventions)."""

from .dataset import ObjectSegmentationDataset, collate_objects
from .intensity import (
    WINDOWS,
    IntensityMapping,
    ct_window,
    intensity_mapping,
    normalize_intensity,
    validate_image,
    volume_normalizer,
)
from .io import (
    LAYOUTS,
    MEDSEGBENCH,
    detect_layout,
    download_medsegbench,
    medsegbench_url,
    open_dataset,
    read_case,
    read_label_array,
    write_mask,
)
from .objects import ObjectInstance, count_objects, instances_from_labels, slice_volume
from .record import MODALITIES, Case, CaseList, CaseRef, normalize_modality
from .splits import split_by_subject

# The corruptions and phantoms (data/corruptions.py, data/phantoms/) are exported here by
# their own author: two import lines and their names in __all__ go below.

__all__ = [
    "LAYOUTS",
    "MEDSEGBENCH",
    "MODALITIES",
    "WINDOWS",
    "Case",
    "CaseList",
    "CaseRef",
    "IntensityMapping",
    "ObjectInstance",
    "ObjectSegmentationDataset",
    "collate_objects",
    "count_objects",
    "ct_window",
    "detect_layout",
    "download_medsegbench",
    "instances_from_labels",
    "intensity_mapping",
    "medsegbench_url",
    "normalize_intensity",
    "normalize_modality",
    "open_dataset",
    "read_case",
    "read_label_array",
    "slice_volume",
    "split_by_subject",
    "validate_image",
    "volume_normalizer",
    "write_mask",
]
