"""A package's fitted prior: where `sample` draws its latent vectors when N(0, I) is a poor map.

A high-KL MusicVAE reconstructs faithfully, but its codes do not fill N(0, I): decoded draws of
N(0, I) leave the data (a fifth of drums_2bar's are walls of hits). Instead of shipping a second, low-KL model
(a pair, bridge.runtime.package.sampler_entry), a package may carry a Gaussian fitted to the codes of
its own training windows, on their top principal axes (ex-post density estimation; Ghosh et al.,
"From variational to deterministic autoencoders", 2020):

    z = mean + eps @ basis,   eps ~ N(0, I_k),   basis (k, z_size): sqrt(eigenvalue) * eigenvector

so a prior sample is still a draw of N(0, I) — of k numbers — sent through a fixed map into this
package's own latent space: `sample` decodes with the package itself, and knob-first latents and a
palette's free corners need no encoding round trip.

The manifest section (written by `python -m export_onnx fit-prior`): {"file": PRIOR_FILE,
"components": k, ...free text for the card}; the file holds `mean` (z_size,) and `basis` (k, z_size)
float32 and is listed in `files` with its sha256 like every graph.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..core.errors import ModelError
from .package import named_section

PRIOR_KEY = "prior"
PRIOR_FILE = "prior.npz"


class LatentPrior:
    """z = mean + eps @ basis with eps ~ N(0, I_k): a Gaussian on the top k principal axes of the codes.

    Attributes: `mean` (z_size,), `basis` (k, z_size), `components` (k), `z_size`.
    """

    def __init__(self, mean, basis):
        """Raises ValueError: shapes that do not fit, k outside 1..z_size, or a non-finite number."""
        mean = np.asarray(mean, dtype=np.float32)
        basis = np.asarray(basis, dtype=np.float32)
        if mean.ndim != 1 or basis.ndim != 2 or basis.shape[1] != mean.shape[0]:
            raise ValueError(f"a prior needs mean (z,) and basis (k, z); got {mean.shape} and {basis.shape}")
        if not 1 <= basis.shape[0] <= mean.shape[0]:
            raise ValueError(f"a prior needs 1..{mean.shape[0]} components, got {basis.shape[0]}")
        if not (np.isfinite(mean).all() and np.isfinite(basis).all()):
            raise ValueError("a prior's mean and basis must be finite")
        self.mean, self.basis = mean, basis
        self.components, self.z_size = basis.shape

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n latent vectors (n, z_size) float32 from k standard normals each, drawn from `rng`."""
        eps = rng.standard_normal((n, self.components), dtype=np.float32)
        return self.mean + eps @ self.basis

    def save(self, path) -> None:
        """Write PRIOR_FILE's arrays to `path` (numpy .npz, no pickles)."""
        with open(path, "wb") as f:
            np.savez(f, mean=self.mean, basis=self.basis)

    @classmethod
    def read(cls, path) -> "LatentPrior":
        """Raises ValueError: not an .npz with float arrays `mean` and `basis` that fit (see __init__)."""
        try:
            z = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path}: not a prior file ({type(e).__name__}: {e})") from e
        if not isinstance(z, np.lib.npyio.NpzFile):      # a bare .npy array under the name
            raise ValueError(f"{path}: not a prior file (one array, not an .npz with mean and basis)")
        try:
            with z:
                mean, basis = z["mean"], z["basis"]
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path}: not a prior file ({type(e).__name__}: {e})") from e
        return cls(mean, basis)


def read_prior(package_dir, info: dict, z_size: int) -> LatentPrior | None:
    """The package's fitted prior, or None when its manifest has no `prior` section.

    The file's sha256 is checked with the package's others (bridge.runtime.package.verify_files):
    the section must name a file listed in `files`.

    Raises:
        ModelError: a malformed section, a file not listed in `files` or missing, a file that is not
            a prior, or one for another latent size.
    """
    named = named_section(package_dir, info, PRIOR_KEY, "file")
    if named is None:
        return None
    entry, name = named
    path = Path(package_dir)
    if name not in (info.get("files") or {}):
        raise ModelError(f"{path}/model.json: the prior file {name!r} is not a file listed in 'files'")
    if not (path / name).is_file():
        raise ModelError(f"{path}: the prior file {name} is missing")
    try:
        prior = LatentPrior.read(path / name)
    except ValueError as e:
        raise ModelError(str(e)) from e
    if prior.z_size != z_size:
        raise ModelError(f"{path / name}: a prior for z of {prior.z_size} numbers; the package's z has {z_size}")
    k = entry.get("components")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k != prior.components):
        raise ModelError(f"{path}/model.json: the prior section says {entry['components']} components, "
                         f"{name} has {prior.components}")
    return prior
