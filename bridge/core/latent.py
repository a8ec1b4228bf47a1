"""Latent-space math: interpolation paths, the four-corner palette, variations, attribute moves.

Everything here is plain numpy on float32 arrays of shape (z,) or (N, z); no model is needed.
"""
from __future__ import annotations

import numpy as np


def _as_vector(z, what: str = "z") -> np.ndarray:
    z = np.asarray(z, dtype=np.float32)
    if z.ndim == 2 and z.shape[0] == 1:
        z = z[0]
    if z.ndim != 1:
        raise ValueError(f"{what} must be one latent vector (z,), got shape {z.shape}")
    return z


def _fractions(steps: int) -> np.ndarray:
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps (its two ends), got {steps}")
    return np.linspace(0.0, 1.0, steps, dtype=np.float64)


def lerp(a, b, steps: int = 8) -> np.ndarray:
    """`steps` points on the straight line from a to b, both ends included: (steps, z)."""
    a, b = _as_vector(a, "a"), _as_vector(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b differ in size: {a.shape} vs {b.shape}")
    t = _fractions(steps)[:, None]
    out = (1.0 - t) * a.astype(np.float64) + t * b.astype(np.float64)
    out[0], out[-1] = a, b
    return out.astype(np.float32)


def slerp(a, b, steps: int = 8) -> np.ndarray:
    """Spherical interpolation (MusicVAE's default), both ends included: (steps, z).

    The angle is taken between the directions of a and b, and the path is the usual
    sin((1-t)w)/sin(w) a + sin(tw)/sin(w) b, so unit vectors stay on the unit sphere and the
    norm varies smoothly between |a| and |b|. Nearly parallel vectors fall back to lerp.
    """
    a, b = _as_vector(a, "a"), _as_vector(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b differ in size: {a.shape} vs {b.shape}")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
    t = _fractions(steps)[:, None]
    if na == 0.0 or nb == 0.0:
        return lerp(a, b, steps)
    cos = float(np.clip(np.dot(a64 / na, b64 / nb), -1.0, 1.0))
    omega = np.arccos(cos)
    if np.sin(omega) < 1e-6:
        return lerp(a, b, steps)
    s = np.sin(omega)
    out = np.sin((1.0 - t) * omega) / s * a64 + np.sin(t * omega) / s * b64
    out[0], out[-1] = a64, b64
    return out.astype(np.float32)


def interpolate(a, b, steps: int = 8, method: str = "slerp") -> np.ndarray:
    if method == "slerp":
        return slerp(a, b, steps)
    if method == "lerp":
        return lerp(a, b, steps)
    raise ValueError(f"unknown interpolation method {method!r}; use 'slerp' or 'lerp'")


def _grid_shape(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        rows = cols = int(size)
    else:
        rows, cols = (int(v) for v in size)
    if rows < 2 or cols < 2:
        raise ValueError(f"a palette needs at least 2x2 cells (the corners), got {rows}x{cols}")
    return rows, cols


def palette(corners, size=5) -> np.ndarray:
    """Bilinear blend of four corner vectors over a rows x cols grid, Beat Blender style.

    `corners` is (4, z) in the order top-left, top-right, bottom-left, bottom-right; `size` is an
    int (square grid) or (rows, cols). Returns (rows * cols, z), row-major: cell (r, c) is at
    index r * cols + c, and the four corner cells equal the corners exactly.
    """
    corners = np.asarray(corners, dtype=np.float32)
    if corners.ndim != 2 or corners.shape[0] != 4:
        raise ValueError(f"palette corners must be (4, z), got shape {corners.shape}")
    rows, cols = _grid_shape(size)
    tl, tr, bl, br = (c.astype(np.float64) for c in corners)
    v = np.linspace(0.0, 1.0, rows)[:, None, None]   # down
    u = np.linspace(0.0, 1.0, cols)[None, :, None]   # across
    top = (1.0 - u) * tl + u * tr
    bottom = (1.0 - u) * bl + u * br
    grid = (1.0 - v) * top + v * bottom
    out = grid.reshape(rows * cols, -1).astype(np.float32)
    out[0], out[cols - 1], out[(rows - 1) * cols], out[-1] = corners
    return out


def variations(z, n: int, spread: float = 0.5, rng=None) -> np.ndarray:
    """n points around z: z + spread * N(0, I). (n, z). `rng`: a numpy Generator or a seed."""
    z = _as_vector(z)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    noise = rng.standard_normal((n, z.shape[0]), dtype=np.float32)
    return (z[None, :] + np.float32(spread) * noise).astype(np.float32)


def move(z, vector, amount: float) -> np.ndarray:
    """z + amount * vector, for one vector (z,) or a batch (N, z)."""
    z = np.asarray(z, dtype=np.float32)
    vector = np.asarray(vector, dtype=np.float32)
    if vector.ndim != 1 or z.shape[-1] != vector.shape[0]:
        raise ValueError(f"attribute vector of size {vector.shape} does not fit z of shape {z.shape}")
    return (z + np.float32(amount) * vector).astype(np.float32)
