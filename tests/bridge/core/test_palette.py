"""The palette's low-rank Gaussian: fit, sample, spread, directions, files, bad input."""
import numpy as np
import pytest

from bridge.core.palette import MIN_REST_STD, Palette, PaletteError


def _cloud(n=200, d=16, seed=0):
    """Points around (3, 0, ...) with std 2 along axis 1, 0.5 along axis 2, 0.1 elsewhere."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, d)) * 0.1
    z[:, 1] = rng.standard_normal(n) * 2.0
    z[:, 2] = rng.standard_normal(n) * 0.5
    z[:, 0] += 3.0
    return z


def test_fit_finds_mean_directions_and_rest():
    p = Palette.fit(_cloud(), "c", "m", max_directions=2)
    np.testing.assert_allclose(p.mean[0], 3.0, atol=0.05)
    assert abs(abs(p.directions[0, 1]) - 1) < 0.01 and abs(abs(p.directions[1, 2]) - 1) < 0.02
    np.testing.assert_allclose(p.scales, [2.0, 0.5], rtol=0.15)
    assert p.rest == pytest.approx(max(0.1, MIN_REST_STD), rel=0.2)
    np.testing.assert_allclose(p.directions @ p.directions.T, np.eye(2), atol=1e-5)


def test_samples_follow_the_fit_and_spread_scales_them():
    p = Palette.fit(_cloud(), "c", "m", max_directions=2)
    z = p.sample(4000, 1.0, seed=1)
    assert z.shape == (4000, 16) and z.dtype == np.float32
    np.testing.assert_allclose(z.std(0)[[1, 2, 5]], [2.0, 0.5, 0.1], rtol=0.15)
    np.testing.assert_allclose(z.mean(0)[0], 3.0, atol=0.1)
    assert np.allclose(p.sample(3, 0.0, seed=2), p.mean)          # spread 0 = the mean
    wide = p.sample(4000, 2.0, seed=1)
    assert wide.std(0)[1] == pytest.approx(2 * z.std(0)[1], rel=0.05)
    assert np.array_equal(p.sample(5, 1.0, seed=7), p.sample(5, 1.0, seed=7))


def test_direction_knobs_move_one_fitted_std():
    p = Palette.fit(_cloud(), "c", "m", max_directions=2)
    assert np.linalg.norm(p.direction(0)) == pytest.approx(p.scales[0], rel=1e-5)
    with pytest.raises(PaletteError, match="2 directions"):
        p.direction(5)


def test_json_round_trip_and_malformed_files():
    p = Palette.fit(_cloud(20), "mine", "mel_2bar", info={"clips": 4})
    q = Palette.from_json(p.to_json())
    assert (q.name, q.model, q.windows, q.info["clips"]) == ("mine", "mel_2bar", 20, 4)
    np.testing.assert_array_equal(q.mean, p.mean)
    np.testing.assert_array_equal(q.sample(3, 1.0, seed=0), p.sample(3, 1.0, seed=0))
    for bad in ("{", "[]", '{"format": "other"}', p.to_json().replace('"format_version": 1', '"format_version": 9'),
                p.to_json().replace('"rest": ', '"rest": "x", "_": ')):
        with pytest.raises(PaletteError):
            Palette.from_json(bad)


def test_bad_input_is_refused():
    with pytest.raises(PaletteError, match="at least 3 windows"):
        Palette.fit(np.zeros((2, 8)), "x", "m")
    with pytest.raises(PaletteError, match="non-finite"):
        Palette.fit(np.full((4, 8), np.nan), "x", "m")
    p = Palette.fit(_cloud(10), "x", "m")
    for n, spread in ((0, 1.0), (1, -1.0), (1, float("inf"))):
        with pytest.raises(PaletteError):
            p.sample(n, spread)
    assert isinstance(PaletteError("x"), ValueError) and PaletteError.code == "bad_request"
