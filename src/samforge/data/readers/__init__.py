"""Readers and writers: the edge where files become :class:`~samforge.data.Case` records.

- :mod:`.case`: ``read_case``, ``read_label_array`` and ``write_mask`` (one file or DICOM
  series in, one mask file out), through :mod:`.image2d`, :mod:`.nifti` and :mod:`.dicom`;
- :mod:`.layouts`: ``open_dataset`` and ``detect_layout`` for whole datasets (:mod:`.folders`,
  :mod:`.nnunet`, :mod:`.hc18`, :mod:`.medsegbench`, :mod:`.samed2d`).

Code outside ``samforge.data`` imports these names from :mod:`samforge.data`.

Axis conventions (the one thing to remember)
--------------------------------------------
- 2D images (PNG, JPEG, BMP, TIFF, 2D DICOM): ``Case.image`` is the file's pixel grid as
  stored, (H, W) or (H, W, C); row 0 is the first row of the file. ``spacing`` = (dy, dx).
- NIfTI: nibabel gives the array indexed (i, j, k); ``Case.image`` is that array with its axes
  reversed, (k, j, i) = (D, H, W), so ``case.image[z, y, x] == nifti_array[x, y, z]`` and
  ``spacing`` = (dz, dy, dx) from the header's pixdim. The mapping is a transpose, exactly
  invertible, and :func:`~.case.write_mask` applies its inverse. ``Case.affine`` is the
  file's affine (i, j, k) → world, unchanged.
- DICOM series: ``Case.image`` is (slice, row, column), slices sorted along the slice normal;
  ``Case.affine`` maps (column, row, slice) to RAS mm — what a NIfTI of the series would
  hold — so the same transpose rule applies and a NIfTI mask written for it is aligned.
- On the command line, ``--slice 12`` means ``case.image[12]`` and ``--box x0 y0 x1 y1`` is
  in that slice's (x = column = i, y = row = j) pixel coordinates.

We do NOT reorient volumes to RAS (or any canonical orientation): masks must land on the
voxel grid of the file the user gave us, without resampling, and viewers (ITK-SNAP, 3D
Slicer) place both correctly from the shared affine. The price: "up" in ``case.image[z]`` is
whatever the file stores; display code should not assume radiological orientation.

Writing is atomic: a temporary file in the target folder is renamed into place only when
complete, so an interrupted write never leaves a half-written mask.
"""
