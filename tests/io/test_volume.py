import numpy as np
import pytest

from hostage.io.volume import Volume

SPACINGS = [(1.0, 1.0, 1.0), (3.0, 0.6, 0.6), (0.6, 0.9, 0.7)]


def oblique_direction():
    a = np.deg2rad(20)
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    return rot @ np.eye(3)[:, ::-1]


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("direction", [np.eye(3)[:, ::-1], oblique_direction()])
def test_index_lps_round_trip(spacing, direction):
    v = Volume(
        hu=np.zeros((4, 5, 6), np.int16),
        spacing_zyx_mm=spacing,
        origin_lps_mm=(10.0, -20.0, 5.0),
        direction_lps=direction,
    )
    idx = np.array([[0, 0, 0], [3, 4, 5], [1.5, 2.25, 0.5]])
    back = v.lps_mm_to_index(v.index_to_lps_mm(idx))
    np.testing.assert_allclose(back, idx, atol=1e-9)
    # one step along z moves spacing_z mm along the first direction column
    step = v.index_to_lps_mm([1, 0, 0]) - v.index_to_lps_mm([0, 0, 0])
    np.testing.assert_allclose(step, direction[:, 0] * spacing[0])


def test_axial_default_maps_x_index_to_left_and_z_to_superior():
    v = Volume(hu=np.zeros((2, 2, 2), np.int16), spacing_zyx_mm=(2.0, 0.5, 0.5))
    np.testing.assert_allclose(v.index_to_lps_mm([0, 0, 1]), [0.5, 0, 0])
    np.testing.assert_allclose(v.index_to_lps_mm([0, 1, 0]), [0, 0.5, 0])
    np.testing.assert_allclose(v.index_to_lps_mm([1, 0, 0]), [0, 0, 2.0])


def test_crop_keeps_patient_positions():
    hu = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    v = Volume(
        hu=hu,
        spacing_zyx_mm=(3.0, 0.6, 0.7),
        origin_lps_mm=(1.0, 2.0, 3.0),
        direction_lps=oblique_direction(),
    )
    c = v.crop((slice(1, 3), slice(2, 5), slice(0, 4)))
    assert c.hu.shape == (2, 3, 4)
    assert c.hu[0, 0, 0] == hu[1, 2, 0]
    np.testing.assert_allclose(c.index_to_lps_mm([1, 2, 3]), v.index_to_lps_mm([2, 4, 3]))


def test_volume_is_read_only():
    v = Volume(hu=np.zeros((2, 2, 2), np.int16), spacing_zyx_mm=(1, 1, 1))
    with pytest.raises(ValueError, match="read-only"):
        v.hu[0, 0, 0] = 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hu": np.zeros((2, 2), np.int16)}, r"must be 3-D"),
        ({"hu": np.zeros((2, 2, 2), np.float64)}, r"int16 or float32"),
        ({"spacing_zyx_mm": (1.0, 0.0, 1.0)}, r"spacing_zyx_mm must be 3 finite values > 0"),
        ({"spacing_zyx_mm": (1.0, np.nan, 1.0)}, r"spacing_zyx_mm must be 3 finite values > 0"),
        ({"direction_lps": np.ones((3, 3))}, r"must be an orthonormal matrix"),
        ({"origin_lps_mm": (0.0, np.inf, 0.0)}, r"origin_lps_mm must be 3 finite"),
    ],
)
def test_volume_rejects_bad_geometry(kwargs, match):
    base = {"hu": np.zeros((2, 2, 2), np.int16), "spacing_zyx_mm": (1.0, 1.0, 1.0)}
    with pytest.raises(ValueError, match=match):
        Volume(**{**base, **kwargs})
