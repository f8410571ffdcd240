"""Export to ONNX: the image encoder, the prompt encoder + mask decoder in the signature of
SAM's own ``SamOnnxModel``, and a batched decoder, each checked with ONNX Runtime.

- :mod:`.graphs`: the modules that are traced;
- :mod:`.export`: :func:`~.export.export_onnx` and the folder's manifest
  (:class:`~.export.OnnxExport`), exported from :mod:`samforge.models`;
- :mod:`.checks`: ONNX Runtime against the PyTorch model;
- :mod:`.runtime`: ``onnx``/``onnxruntime`` imported lazily (the ``onnx`` extra), sessions,
  prompts in the ONNX decoder's convention.
"""
