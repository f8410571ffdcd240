"""Interactive annotation of 2D images and 3D volumes: what ``samforge serve`` runs, usable
from Python as well.

- :mod:`.objects`: :class:`ObjectInfo` (name, colour, status, prompts per slice) and
  :class:`SlicePrompts`;
- :mod:`.document`: :class:`AnnotationDocument`, a case with its objects, their masks slice
  by slice and the undo history;
- :mod:`.segment`: prompts → mask (the Predictor), brush strokes, propagation
  (:func:`samforge.inference.propagate`);
- :mod:`.store`: the document on disk, written on every change;
- :mod:`.export`: the label map (NIfTI or PNG, the source's geometry) and the prompts JSON.

>>> document = AnnotationDocument(case, IntensitySettings().case_mapping(case))
>>> liver = document.add_object("liver")
>>> document.set_prompts(liver.id, 40, SlicePrompts(box=(60, 80, 120, 130)), predictor)
>>> result = propagate_object(predictor, case.image, document.mapping,
...                           document.object(liver.id), PropagationSettings())
>>> document.apply_propagation(liver.id, result)
"""

from .document import AnnotationDocument
from .export import SavedAnnotations, save_annotations
from .objects import ObjectInfo, SlicePrompts
from .segment import paint_stroke, propagate_object, segment_slice
from .store import DocumentStore

__all__ = [
    "AnnotationDocument",
    "DocumentStore",
    "ObjectInfo",
    "SavedAnnotations",
    "SlicePrompts",
    "paint_stroke",
    "propagate_object",
    "save_annotations",
    "segment_slice",
]
