"""A palette: a small latent model of a player's own material, fitted on top of a MusicVAE's z space.

MidiMe (magenta.js) showed the idea with a small VAE on the latents; a palette is the simplest model
that does the job in well under a second on a CPU: a low-rank Gaussian

    z = mean + U (s * e) + rest * (I - U U^T) n,        e ~ N(0, I_k), n ~ N(0, I_z)

with `U` the k principal directions of the encoded windows (orthonormal columns), `s` their standard
deviations and `rest` the isotropic standard deviation left in the other directions. `spread` scales
every deviation: 0 gives the palette's mean, 1 its fitted spread, > 1 wider.

Plain numpy (this module is part of bridge.core); encoding clips into z is bridge.runtime.palette.
A palette is saved as JSON (`to_json` / `from_json`), so the device can store it with a Live set.
"""
from __future__ import annotations

import json
import time

import numpy as np

from .errors import InvalidInput

FORMAT = "latent-bridge-palette"
FORMAT_VERSION = 1
MIN_WINDOWS = 3
MAX_DIRECTIONS = 8
# the rest variance never falls below this share of the prior's (1.0 per dimension): a palette from a
# handful of windows would otherwise collapse onto their span and play back only what it was given
MIN_REST_STD = 0.05


def _short(a: np.ndarray) -> list[float]:
    return [float(f"{x:.9g}") for x in a.tolist()]


class PaletteError(InvalidInput):
    """A palette cannot be fitted or read (too few windows, wrong shapes, a malformed file)."""


class Palette:
    """A fitted low-rank Gaussian over latent vectors (see the module docstring).

    Attributes:
        name, model: the palette's name and the model (package name) whose z space it lives in.
        mean (z,), directions (k, z) orthonormal rows, scales (k,), rest: the Gaussian.
        windows: how many windows it was fitted on; info: free-form facts (clips, fit time).
    """

    def __init__(self, name: str, model: str, mean, directions, scales, rest: float, windows: int,
                 info: dict | None = None):
        self.name, self.model = str(name), str(model)
        self.mean = np.asarray(mean, dtype=np.float32)
        self.directions = np.asarray(directions, dtype=np.float32).reshape(-1, self.mean.shape[0])
        self.scales = np.asarray(scales, dtype=np.float32).reshape(-1)
        self.rest = float(rest)
        self.windows = int(windows)
        self.info = dict(info or {})
        if self.mean.ndim != 1 or len(self.scales) != len(self.directions):
            raise PaletteError(f"palette {name!r}: mean {self.mean.shape}, {len(self.directions)} directions "
                               f"and {len(self.scales)} scales do not fit together")
        if not (np.all(np.isfinite(self.mean)) and np.all(np.isfinite(self.directions))
                and np.all(np.isfinite(self.scales)) and np.isfinite(self.rest)):
            raise PaletteError(f"palette {name!r}: non-finite numbers")

    @property
    def z_size(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def fit(cls, z, name: str, model: str, max_directions: int = MAX_DIRECTIONS, info: dict | None = None
            ) -> "Palette":
        """Fit the low-rank Gaussian to encoded windows.

        Args:
            z: (n, z_size) posterior means of the player's windows, n >= MIN_WINDOWS.
            name, model: what the palette is called and which model's z space it is in.
            max_directions: the most principal directions kept (fewer when n - 1 is smaller).
        Returns:
            the Palette; info gets `fit_ms`.
        Raises:
            PaletteError: fewer than MIN_WINDOWS windows, or z is not a finite (n, z) array.
        """
        t0 = time.perf_counter()
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[0] < MIN_WINDOWS:
            n = z.shape[0] if z.ndim == 2 else 0
            raise PaletteError(f"a palette needs at least {MIN_WINDOWS} windows of the model's length, got {n}")
        if not np.all(np.isfinite(z)):
            raise PaletteError("the encoded windows hold non-finite numbers")
        n, d = z.shape
        mean = z.mean(0)
        centered = z - mean
        _, sv, vt = np.linalg.svd(centered, full_matrices=False)
        var = sv ** 2 / max(n - 1, 1)
        k = int(min(max_directions, n - 1, d, int(np.sum(var > 1e-12))))
        total = float(var.sum())
        kept = float(var[:k].sum())
        rest = float(np.sqrt(max(total - kept, 0.0) / max(d - k, 1)))
        rest = max(rest, MIN_REST_STD)
        info = {**(info or {}), "fit_ms": round(1000 * (time.perf_counter() - t0), 3),
                "explained": round(kept / total, 4) if total > 0 else 1.0}
        return cls(name, model, mean, vt[:k], np.sqrt(var[:k]), rest, n, info)

    def sample(self, n: int, spread: float = 1.0, seed=None) -> np.ndarray:
        """n latent vectors (n, z) float32 drawn from the palette, deviations scaled by `spread`.

        Raises:
            PaletteError: n < 1 or a negative / non-finite spread.
        """
        if n < 1:
            raise PaletteError(f"n must be >= 1, got {n}")
        if not np.isfinite(spread) or spread < 0:
            raise PaletteError(f"spread must be a finite number >= 0, got {spread}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        k, d = self.directions.shape
        e = rng.standard_normal((n, k))
        noise = rng.standard_normal((n, d))
        u = self.directions.astype(np.float64)
        noise -= (noise @ u.T) @ u          # the rest lives outside the principal directions
        z = self.mean + spread * ((e * self.scales) @ u + self.rest * noise)
        return z.astype(np.float32)

    def direction(self, i: int) -> np.ndarray:
        """Principal direction i scaled by its standard deviation: a knob that moves one fitted std."""
        if not 0 <= i < len(self.directions):
            raise PaletteError(f"palette {self.name!r} has {len(self.directions)} directions, no {i}")
        return (self.directions[i] * self.scales[i]).astype(np.float32)

    # -- files
    def to_dict(self) -> dict:
        """The palette as plain JSON types; float32 numbers written with the 9 significant digits
        that read back to the same float32 (a 256-d palette stays well inside one OSC datagram)."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "name": self.name, "model": self.model,
                "z_size": self.z_size, "windows": self.windows, "mean": _short(self.mean),
                "directions": [_short(d) for d in self.directions], "scales": _short(self.scales),
                "rest": self.rest, "info": self.info}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> "Palette":
        """Raises PaletteError for anything that is not a palette of this format."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise PaletteError(f"not a {FORMAT} object")
        if d.get("format_version") != FORMAT_VERSION:
            raise PaletteError(f"palette format_version {d.get('format_version')!r}, expected {FORMAT_VERSION}")
        try:
            p = cls(d["name"], d["model"], d["mean"], d["directions"], d["scales"], d["rest"], d["windows"],
                    d.get("info"))
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, PaletteError):
                raise
            raise PaletteError(f"malformed palette: {e}") from None
        if p.z_size != d.get("z_size", p.z_size):
            raise PaletteError(f"palette z_size {d.get('z_size')} != its mean's {p.z_size}")
        return p

    @classmethod
    def from_json(cls, text: str) -> "Palette":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise PaletteError(f"palette JSON unreadable: {e}") from None
