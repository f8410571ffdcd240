"""Supported end-to-end pipelines that the CLI, the experiments and a server call.

- :mod:`~samforge.workflows.demo`: the built-in demonstration (``samforge demo``).
- :mod:`~samforge.workflows.finetune`: fine-tune for N steps from a config dict, read the
  loss history.
- :mod:`~samforge.workflows.interactive`: phantom images, one interactive 2D evaluation with
  its report, and the Dice of masks that need no model.
- :mod:`~samforge.workflows.predictors`: models named on a command line, loaded and
  labelled alike by every evaluation command.
- :mod:`~samforge.workflows.subjects`: numbered subject ranges (HC18's ``000-199``).
- :mod:`~samforge.workflows.speed`: what ``samforge bench`` measures.

Submodules are imported where used; this package imports none of them, so that importing
one pipeline does not load the others (training loads Lightning).
"""
