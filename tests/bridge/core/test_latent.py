import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from bridge.core import latent

vec = arrays(np.float32, st.integers(2, 16), elements=st.floats(-4, 4, width=32))


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 16), st.integers(2, 12), st.integers(0, 2**31 - 1))
def test_slerp_endpoints_and_unit_norm(dim, steps, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((2, dim)).astype(np.float32)
    a /= np.linalg.norm(a)
    b /= np.linalg.norm(b)
    path = latent.slerp(a, b, steps)
    assert path.shape == (steps, dim) and path.dtype == np.float32
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[-1], b)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 1.0, atol=1e-4)
    # equal angular steps along the great circle
    cos = np.clip((path[:-1] * path[1:]).sum(1), -1, 1)
    if np.dot(a, b) < 0.999:
        np.testing.assert_allclose(np.arccos(cos), np.arccos(cos).mean(), atol=2e-3)


def test_slerp_norm_between_ends_and_parallel_fallback():
    a = np.array([3.0, 0.0, 0.0], np.float32)
    b = np.array([0.0, 1.0, 0.0], np.float32)
    norms = np.linalg.norm(latent.slerp(a, b, 9), axis=1)
    assert norms.min() >= 1.0 - 1e-5 and norms.max() <= 3.0 + 1e-5
    np.testing.assert_allclose(latent.slerp(a, 2 * a, 5), latent.lerp(a, 2 * a, 5))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 10), st.integers(0, 2**31 - 1))
def test_lerp_is_straight(steps, seed):
    a, b = np.random.default_rng(seed).standard_normal((2, 6)).astype(np.float32)
    path = latent.lerp(a, b, steps)
    np.testing.assert_array_equal(path[[0, -1]], np.stack([a, b]))
    np.testing.assert_allclose(np.diff(path, axis=0), np.broadcast_to((b - a) / (steps - 1), (steps - 1, 6)),
                               atol=1e-5)


def test_interpolate_rejects_bad_arguments():
    a = np.zeros(4, np.float32)
    with pytest.raises(ValueError):
        latent.interpolate(a, a, 1)
    with pytest.raises(ValueError):
        latent.interpolate(a, a, 4, method="cubic")
    with pytest.raises(ValueError):
        latent.slerp(a, np.zeros(5, np.float32), 4)


@pytest.mark.parametrize("size", [2, 5, (3, 4)])
def test_palette_corners_and_bilinear(size):
    corners = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    grid = latent.palette(corners, size)
    rows, cols = (size, size) if isinstance(size, int) else size
    assert grid.shape == (rows * cols, 6)
    g = grid.reshape(rows, cols, 6)
    np.testing.assert_array_equal(np.stack([g[0, 0], g[0, -1], g[-1, 0], g[-1, -1]]), corners)
    # every row and every column is a straight line (bilinear)
    for r in range(rows):
        np.testing.assert_allclose(np.diff(g[r], 2, axis=0), 0, atol=1e-5)
    for c in range(cols):
        np.testing.assert_allclose(np.diff(g[:, c], 2, axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(g.mean((0, 1)), corners.mean(0), atol=1e-5)


def test_palette_rejects_bad_shapes():
    with pytest.raises(ValueError):
        latent.palette(np.zeros((3, 4)), 3)
    with pytest.raises(ValueError):
        latent.palette(np.zeros((4, 4)), 1)


def test_variations_reproducible_and_spread():
    z = np.arange(8, dtype=np.float32)
    v1 = latent.variations(z, 500, 0.25, rng=3)
    v2 = latent.variations(z, 500, 0.25, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(v1, v2)
    assert v1.shape == (500, 8)
    np.testing.assert_allclose((v1 - z).std(), 0.25, rtol=0.1)
    np.testing.assert_array_equal(latent.variations(z, 3, 0.0, rng=1), np.tile(z, (3, 1)))


def test_move():
    z = np.zeros((2, 3), np.float32)
    np.testing.assert_array_equal(latent.move(z, [1, 2, 3], 2.0), [[2, 4, 6], [2, 4, 6]])
    with pytest.raises(ValueError):
        latent.move(z, [1, 2], 1.0)
