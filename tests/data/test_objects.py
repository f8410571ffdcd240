"""Objects (connected components per class) and volume slicing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from skimage import measure

from samforge.data import Case, count_objects, instances_from_labels, slice_volume
from samforge.errors import InputImageError


def test_boxes_are_min_x_min_y_max_x_plus_1_max_y_plus_1():
    label = np.zeros((30, 40), np.uint8)
    label[5:12, 20:31] = 1  # rows 5..11, columns 20..30
    label[20, 3] = 1  # a single pixel
    label[25:28, 0:40] = 2
    objects = instances_from_labels(label, min_size=1)
    assert [(o.class_id, o.area) for o in objects] == [(1, 77), (1, 1), (2, 120)]
    np.testing.assert_array_equal(objects[0].box, [20, 5, 31, 12])
    np.testing.assert_array_equal(objects[1].box, [3, 20, 4, 21])
    np.testing.assert_array_equal(objects[2].box, [0, 25, 40, 28])
    assert objects[0].mask.dtype == bool and objects[0].mask.shape == label.shape
    assert objects[0].mask.sum() == 77 and objects[0].mask[5, 20] and not objects[0].mask[4, 20]


def test_small_components_are_dropped_and_classes_filtered():
    label = np.zeros((20, 20), np.int32)
    label[0:4, 0:5] = 3  # 20 pixels: kept at min_size 20
    label[10:13, 10:16] = 3  # 18 pixels: dropped
    label[15:20, 15:20] = 9
    assert [o.area for o in instances_from_labels(label)] == [20, 25]
    assert [o.class_id for o in instances_from_labels(label, classes=[9])] == [9]
    assert count_objects(label) == {3: [20], 9: [25]}
    assert instances_from_labels(np.zeros((5, 5), np.uint8)) == []


def test_objects_are_8_connected_unless_asked_for_4():
    """Two squares that touch at one corner: one object under skimage's (and medico-sam's)
    default 8-connectivity, two under 4-connectivity."""
    label = np.zeros((12, 12), np.uint8)
    label[1:6, 1:6] = 1
    label[6:11, 6:11] = 1
    assert measure.label(label).max() == 1  # the reference: skimage's default
    assert [o.area for o in instances_from_labels(label)] == [50]
    assert count_objects(label) == {1: [50]}
    assert [o.area for o in instances_from_labels(label, connectivity=1)] == [25, 25]
    diagonal = np.eye(6, dtype=np.uint8)
    assert len(instances_from_labels(diagonal, min_size=1)) == 1
    assert len(instances_from_labels(diagonal, min_size=1, connectivity=1)) == 6
    with pytest.raises(InputImageError, match="connectivity must be between 1 and 2"):
        instances_from_labels(label, connectivity=3)


def test_3d_objects_have_six_number_boxes():
    label = np.zeros((10, 20, 30), np.uint8)
    label[2:5, 3:9, 10:25] = 4  # z 2..4, y 3..8, x 10..24
    (obj,) = instances_from_labels(label)
    np.testing.assert_array_equal(obj.box, [10, 3, 2, 25, 9, 5])
    assert obj.area == 3 * 6 * 15 and obj.mask.shape == label.shape


def _skimage_sizes(label: np.ndarray, min_size: int, connectivity: int) -> dict[int, list[int]]:
    sizes = {}
    for class_id in np.unique(label[label > 0]):
        components = measure.label(label == class_id, connectivity=connectivity)
        regions = measure.regionprops(components)
        sizes[int(class_id)] = sorted(r.area for r in regions if r.area >= min_size)
    return sizes


@settings(max_examples=30, deadline=None)
@given(
    hnp.arrays(
        np.uint8,
        hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=14),
        elements=st.integers(0, 3),
    ),
    st.integers(1, 6),
    st.booleans(),
)
def test_components_agree_with_skimage(label, min_size, full):
    connectivity = label.ndim if full else 1
    objects = instances_from_labels(label, min_size=min_size, connectivity=connectivity)
    ours: dict[int, list[int]] = {}
    for obj in objects:
        ours.setdefault(obj.class_id, []).append(obj.area)
        assert obj.mask.sum() == obj.area and np.all(label[obj.mask] == obj.class_id)
        where = np.nonzero(obj.mask)[::-1]  # (x, y[, z])
        np.testing.assert_array_equal(
            obj.box, [w.min() for w in where] + [w.max() + 1 for w in where]
        )
    reference = _skimage_sizes(label, min_size, connectivity)
    assert {k: sorted(v) for k, v in ours.items()} == {k: v for k, v in reference.items() if v}
    counted = count_objects(label, min_size, connectivity=connectivity)
    assert {k: sorted(v) for k, v in counted.items() if v} == {
        k: sorted(v) for k, v in ours.items()
    }


def _volume(label: bool = True) -> Case:
    image = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    labels = np.zeros((4, 5, 6), np.uint8)
    labels[1, 2, 3] = labels[3, 0, 0] = 1
    affine = np.diag([0.5, 0.7, 2.0, 1.0])
    return Case(
        image,
        labels if label else None,
        (2.0, 0.7, 0.5),
        affine,
        "ct",
        "vol",
        "subj",
        {"source": "x"},
    )


def test_slice_volume_along_each_axis():
    volume = _volume()
    slices = list(slice_volume(volume))
    assert len(slices) == 4 and slices[1].name == "vol_z001"
    first = slices[2]
    np.testing.assert_array_equal(first.image, volume.image[2])
    assert first.spacing == (0.7, 0.5) and not first.is_volume and first.subject == "subj"
    assert first.meta["slice_index"] == 2 and first.meta["volume_name"] == "vol"
    assert first.affine is None and first.meta["volume_affine"] is volume.affine
    assert np.shares_memory(first.image, volume.image)  # views, not copies
    coronal = list(slice_volume(volume, axis=1))
    assert (
        len(coronal) == 5 and coronal[0].image.shape == (4, 6) and coronal[0].spacing == (2.0, 0.5)
    )
    np.testing.assert_array_equal(coronal[3].image, volume.image[:, 3, :])
    sagittal = list(slice_volume(volume, axis=2))
    assert sagittal[4].image.shape == (4, 5) and sagittal[4].name == "vol_x004"
    assert [s.meta["slice_index"] for s in slice_volume(volume, foreground_only=True)] == [1, 3]


def test_slice_volume_errors():
    with pytest.raises(InputImageError, match="has no label"):
        list(slice_volume(_volume(label=False), foreground_only=True))
    with pytest.raises(InputImageError, match="axis must be 0"):
        list(slice_volume(_volume(), axis=3))
    flat = Case(np.zeros((4, 4)), None, (1, 1), None, "ct", "flat")
    with pytest.raises(InputImageError, match="'flat' is 2D"):
        list(slice_volume(flat))
