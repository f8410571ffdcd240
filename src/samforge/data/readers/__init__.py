"""Readers of single files (``case``) and of dataset layouts (``layouts``).

See :mod:`samforge.data.io` for the axis conventions.
"""

from .case import read_case, read_label_array, write_mask
from .hc18 import fill_ring
from .layouts import LAYOUTS, detect_layout, open_dataset
from .medsegbench import MEDSEGBENCH, download_medsegbench, medsegbench_url

__all__ = [
    "LAYOUTS",
    "MEDSEGBENCH",
    "detect_layout",
    "download_medsegbench",
    "fill_ring",
    "medsegbench_url",
    "open_dataset",
    "read_case",
    "read_label_array",
    "write_mask",
]
