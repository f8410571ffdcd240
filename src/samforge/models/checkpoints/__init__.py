"""Checkpoints: from files to models and back.

- :mod:`.reading`: the layouts found in the wild, read into a :class:`~.reading.RawCheckpoint`
  under samforge's names;
- :mod:`.shape_inference`: the config of a state dict, from its shapes and keys;
- :mod:`.position_tables`: position tables resized to another input size;
- :mod:`.loading`: :func:`~.loading.load_model`, from a name, a file or a state dict;
- :mod:`.export`: the official SAM format and each family's own;
- :mod:`.registry` and :mod:`.hub`: named models, downloaded into a verified cache;
- :mod:`.fusion`: modules of several checkpoints in one model.
"""

# The MobileSAM-architecture entries live beside the registry (size); importing them here
# registers them whichever checkpoints module is imported first.
from . import registry_mobilesam  # noqa: F401
