"""Data layer: records, readers and writers, intensity normalisation, objects, splits and
the training Dataset (see :mod:`.readers` for the axis conventions).

Code outside ``samforge.data`` imports the names below from here; the corruptions and
phantoms are imported from their own packages (:mod:`.corruptions`, :mod:`.phantoms`).
"""

from .case_objects import largest_component_boxes, object_sizes, plane_instances
from .dataset import OBJECT_SAMPLING, ObjectSegmentationDataset, collate_objects
from .intensity import (
    WINDOWS,
    IntensityMapping,
    IntensitySettings,
    ct_window,
    intensity_mapping,
    normalize_intensity,
    validate_image,
    volume_normalizer,
)
from .objects import ObjectInstance, count_objects, instances_from_labels, slice_volume
from .readers.case import read_case, read_label_array, write_mask
from .readers.layouts import LAYOUTS, choose_split, dataset_splits, detect_layout, open_dataset
from .readers.medsegbench import MEDSEGBENCH, download_medsegbench, medsegbench_url
from .record import MODALITIES, Case, CaseList, CaseRef, MaskObject, normalize_modality
from .splits import overlapping_cases, split_by_subject

__all__ = [
    "LAYOUTS",
    "MEDSEGBENCH",
    "MODALITIES",
    "OBJECT_SAMPLING",
    "WINDOWS",
    "Case",
    "CaseList",
    "CaseRef",
    "IntensityMapping",
    "IntensitySettings",
    "MaskObject",
    "ObjectInstance",
    "ObjectSegmentationDataset",
    "choose_split",
    "collate_objects",
    "count_objects",
    "ct_window",
    "dataset_splits",
    "detect_layout",
    "download_medsegbench",
    "instances_from_labels",
    "intensity_mapping",
    "largest_component_boxes",
    "medsegbench_url",
    "normalize_intensity",
    "normalize_modality",
    "object_sizes",
    "open_dataset",
    "overlapping_cases",
    "plane_instances",
    "read_case",
    "read_label_array",
    "slice_volume",
    "split_by_subject",
    "validate_image",
    "volume_normalizer",
    "write_mask",
]
