"""SAM itself, one module per component, under the official parameter names.

- :mod:`.image_encoder`: the ViT (windowed and global attention, decomposed relative
  positions); :mod:`.adapter`: SAM-Med2D's adapter inside its blocks;
- :mod:`.prompt_encoder`, :mod:`.transformer` (two-way), :mod:`.mask_decoder`;
- :mod:`.common`: blocks the components share;
- :mod:`.model`: :class:`~.model.Sam` and :class:`~.model.PromptableModel`, the interface
  every family's model has;
- :mod:`.embeddings`: what ``embed_images`` returns, for every family.

The families of :mod:`samforge.models.families` build on these modules; nothing here knows
about them.
"""
