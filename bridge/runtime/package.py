"""The model package format: the one definition both the exporter (export_onnx) and the runtime use.

A package is a directory holding `model.json` (the manifest) and the ONNX graphs it lists:

    bridge/models/mel_2bar/
        model.json            format, format_version, name, kind, bars, tracks, decoder, graphs, files, ...
        encoder.onnx          GRAPH_IO["encoder"]: inputs -> mu, sigma
        decoder_init.onnx     cond -> state_c, state_h (+ cond_proj from format_version 2)
        decoder_step.onnx     prev, cond | cond_proj, state_c, state_h -> logits, new_state_c, new_state_h
        conductor.onnx        (hierarchical) z -> embeddings
        surrogate_encoder.onnx  (optional, trio) OPTIONAL_GRAPH_IO: inputs -> mu, sigma
        decoder_step.int8.onnx  (optional) the step with int8 weights, same inputs/outputs (`int8` section)
        encoder.int8.onnx     (optional) the encoder with int8 LSTM weights, same inputs/outputs
                              (`int8_encoder` section)
        sampler/              (optional) a whole package of the same kind that `sample` draws from
                              (`sampler` section; see `sampler_entry`): a low-KL / high-KL pair
        prior.npz             (optional, never with sampler/) the Gaussian `sample` draws z from,
                              fitted to the package's own codes (`prior` section; bridge.runtime.prior)

`files` maps every file of the package but model.json to its sha256. Reading side: `find_model`,
`read_manifest` (`parse_manifest` without the checks), `verify_files`, `list_models`. Writing side: `sha256_file`, `record_files`,
`write_manifest` (atomic), `update_manifest`. The optional int8 graphs: `int8_graph` (`int8_step`),
`int8_agreement` (INT8_GRAPHS, INT8_FILE, INT8_MIN_AGREEMENT). The optional prior sampler: `sampler_entry`,
`SAMPLER_FIELDS`. See docs/architecture.md, "Model package".

No onnxruntime, no torch: json, hashlib and the codecs only.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

from ..core.codecs import SequenceCodec
from ..core.errors import CodecError, ModelError

FORMAT = "latent-bridge-model"
# 1 and 2 are read; 2: decoder_init also outputs cond_proj, which decoder_step reads instead of cond
FORMAT_VERSION = 2
MANIFEST = "model.json"
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"   # the shipped packages: bridge/models/
MODELS_ENV = "LATENT_BRIDGE_MODELS"   # extra package directories, os.pathsep-separated

REQUIRED_KEYS = ("format", "format_version", "name", "kind", "hierarchical", "bars", "steps_per_bar",
                 "num_steps", "z_size", "input_size", "tracks", "decoder", "graphs", "files")
# role -> (input names, output names), format_version 1
GRAPH_IO = {
    "encoder": (("inputs",), ("mu", "sigma")),
    "conductor": (("z",), ("embeddings",)),
    "decoder_init": (("cond",), ("state_c", "state_h")),
    "decoder_step": (("prev", "cond", "state_c", "state_h"), ("logits", "new_state_c", "new_state_h")),
}
# format_version >= 2: the conditioning's part of the step's layer-1 gates is computed once per bar
GRAPH_IO_V2 = {
    **GRAPH_IO,
    "decoder_init": (("cond",), ("state_c", "state_h", "cond_proj")),
    "decoder_step": (("prev", "cond_proj", "state_c", "state_h"), ("logits", "new_state_c", "new_state_h")),
}
# graphs a package may add; a runtime that does not use one ignores it
SURROGATE_ROLE = "surrogate_encoder"
OPTIONAL_GRAPH_IO = {SURROGATE_ROLE: (("inputs",), ("mu", "sigma"))}
# an int8 decoder step (export_onnx.int8, `add-int8`): a drop-in for decoder_step.onnx (same inputs and
# outputs), described by the manifest's `int8` section, not by `graphs` (it is another precision of a
# role, not a role). INT8_MIN_AGREEMENT: the argmax token agreement with the float decode below which
# add-int8 refuses it and `precision="auto"` does not use it.
INT8_KEY = "int8"
INT8_FILE = "decoder_step.int8.onnx"
INT8_MIN_AGREEMENT = 0.98
# the same for the encoder (its LSTM weights 8-bit): section `int8_encoder`, gated the same way
INT8_ENCODER_KEY = "int8_encoder"
INT8_ENCODER_FILE = "encoder.int8.onnx"
# role -> (manifest section, file) of the roles that may have an int8 drop-in
INT8_GRAPHS = {"decoder_step": (INT8_KEY, INT8_FILE), "encoder": (INT8_ENCODER_KEY, INT8_ENCODER_FILE)}


def graph_io(info: dict) -> dict:
    """The graph table for a manifest.

    Args:
        info: a manifest (only `format_version` is read; missing = 1).

    Returns:
        role -> (input names, output names).
    """
    return GRAPH_IO_V2 if info.get("format_version", 1) >= 2 else GRAPH_IO


def required_roles(info: dict) -> list[str]:
    """The graph roles a manifest must list: encoder, decoder_init, decoder_step (+ conductor)."""
    return ["encoder", "decoder_init", "decoder_step"] + (["conductor"] if info.get("hierarchical") else [])


# ---------------------------------------------------------------------------------------------- files
def sha256_file(path, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in `chunk`-byte blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def record_files(info: dict, package_dir, names) -> dict:
    """Set `info["files"][name]` to the sha256 of package_dir/name for each name; returns info."""
    files = info.setdefault("files", {})
    for name in names:
        files[name] = sha256_file(Path(package_dir) / name)
    return info


def write_manifest(package_dir, info: dict) -> Path:
    """Write package_dir/model.json atomically (a temporary file, then a rename).

    Args:
        package_dir: the package directory (must exist).
        info: the manifest; written as indented JSON.

    Returns:
        The path of model.json.
    """
    path = Path(package_dir) / MANIFEST
    tmp = path.with_name(MANIFEST + ".tmp")
    tmp.write_text(json.dumps(info, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def update_manifest(package_dir, change: Callable[[dict], None] | None = None, files=()) -> dict:
    """Read a package's manifest, let `change(info)` edit it, re-hash `files` and write it back.

    Args:
        package_dir: an existing package.
        change: edits the manifest in place (add a graph, a section, ...); None: no edit.
        files: names of package files (new or rewritten) whose sha256 goes into `files`.

    Returns:
        The manifest as written.

    Raises:
        ModelError: the package has no readable model.json (its content is not checked).
    """
    info = parse_manifest(package_dir)
    if change is not None:
        change(info)
    record_files(info, package_dir, files)
    write_manifest(package_dir, info)
    return info


# ---------------------------------------------------------------------------------------------- reading
def search_dirs(extra=None) -> list[Path]:
    """Where packages are searched, in order: `extra` (a directory or a list), $LATENT_BRIDGE_MODELS,
    then the shipped bridge/models/; duplicates removed."""
    dirs: list[Path] = []
    if extra is not None:
        dirs.extend(Path(p) for p in ([extra] if isinstance(extra, (str, os.PathLike)) else extra))
    env = os.environ.get(MODELS_ENV)
    if env:
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    dirs.append(MODELS_DIR)
    seen, out = set(), []
    for d in dirs:
        key = str(d.resolve()) if d.exists() else str(d)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def find_model(name_or_path, models_dirs=None) -> Path:
    """The package directory of a model.

    Args:
        name_or_path: a package name (searched in `search_dirs(models_dirs)`), a package directory,
            or the path of its model.json.
        models_dirs: extra directories to search first (a directory or a list).

    Returns:
        The package directory.

    Raises:
        ModelError: no such package, or a directory without model.json.
    """
    p = Path(name_or_path)
    if p.name == MANIFEST and p.is_file():
        return p.parent
    if p.is_dir():
        if not (p / MANIFEST).is_file():
            raise ModelError(f"{p} is not a model package: it has no model.json")
        return p
    name = str(name_or_path)
    dirs = search_dirs(models_dirs)
    if os.sep not in name and "/" not in name:
        for d in dirs:
            if (d / name / MANIFEST).is_file():
                return d / name
    known = sorted({m["name"] for m in list_models(dirs)})
    raise ModelError(f"no model package {name!r} (searched {', '.join(str(d) for d in dirs)}); "
                     f"available: {', '.join(known) if known else 'none'}")


def parse_manifest(package_dir) -> dict:
    """A package's model.json as a dict, unchecked (see `read_manifest` for the checks).

    Raises:
        ModelError: missing, unreadable, not JSON, not an object.
    """
    path = Path(package_dir) / MANIFEST
    if not path.is_file():
        raise ModelError(f"{package_dir}: missing file model.json")
    try:
        info = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:   # json.JSONDecodeError is a ValueError
        raise ModelError(f"{path}: not a readable JSON manifest ({e})") from None
    if not isinstance(info, dict):
        raise ModelError(f"{path}: the manifest must be a JSON object")
    return info


def read_manifest(package_dir) -> dict:
    """Parse and check a package's model.json: keys, format, version, graph table, tracks.

    Args:
        package_dir: the package directory.

    Returns:
        The manifest.

    Raises:
        ModelError: missing or unreadable, not this format, newer than FORMAT_VERSION, a required
            graph missing or with the wrong input/output names, bad track specs or sizes.
    """
    info = parse_manifest(package_dir)
    path = Path(package_dir) / MANIFEST
    if info.get("format") != FORMAT:
        raise ModelError(f"{path}: not a latent-bridge model (format={info.get('format')!r})")
    missing = [k for k in REQUIRED_KEYS if k not in info]
    if missing:
        raise ModelError(f"{path}: manifest lacks {', '.join(missing)}")
    if not isinstance(info["format_version"], int) or info["format_version"] > FORMAT_VERSION:
        raise ModelError(f"{path}: format_version {info['format_version']!r} is newer than this runtime "
                         f"understands ({FORMAT_VERSION}); update latent-bridge")
    graphs = info["graphs"]
    if not isinstance(graphs, dict):
        raise ModelError(f"{path}: 'graphs' must be an object")
    for role in required_roles(info):
        g = graphs.get(role)
        if not isinstance(g, dict) or not isinstance(g.get("file"), str):
            raise ModelError(f"{path}: graph {role!r} is missing from the manifest")
        ins, outs = graph_io(info)[role]
        if list(g.get("inputs", {})) != list(ins) or list(g.get("outputs", {})) != list(outs):
            raise ModelError(f"{path}: graph {role!r} must have inputs {list(ins)} and outputs {list(outs)}")
        if g["file"] not in info["files"]:
            raise ModelError(f"{path}: graph file {g['file']} has no sha256 in 'files'")
    try:
        codec = SequenceCodec.from_spec(info["tracks"])
    except (CodecError, KeyError, TypeError) as e:
        raise ModelError(f"{path}: bad track specs ({e})") from None
    if codec.input_size != info["input_size"]:
        raise ModelError(f"{path}: input_size {info['input_size']} does not match the tracks ({codec.input_size})")
    if info["num_steps"] != info["bars"] * info["steps_per_bar"]:
        raise ModelError(f"{path}: num_steps != bars * steps_per_bar")
    return info


def verify_files(package_dir, info: dict) -> None:
    """Check that every file the manifest lists exists and has its sha256.

    Raises:
        ModelError: `files` malformed, a name with a path in it, a missing file, a sha256 mismatch.
    """
    package_dir = Path(package_dir)
    files = info["files"]
    if not isinstance(files, dict):
        raise ModelError(f"{package_dir}/model.json: 'files' must map file names to sha256")
    for fname, digest in files.items():
        p = package_dir / fname
        if Path(fname).name != fname:
            raise ModelError(f"{package_dir}/model.json: file name {fname!r} must not contain a path")
        if not p.is_file():
            raise ModelError(f"{package_dir}: missing file {fname}")
        actual = sha256_file(p)
        if actual != digest:
            raise ModelError(f"{p}: sha256 mismatch (the file is corrupt or was changed): "
                             f"manifest {str(digest)[:12]}..., file {actual[:12]}...")


def package_dirs(path) -> list[Path]:
    """A package directory as [it], or the packages in a directory of packages (sorted); [] for
    anything else. Only the presence of model.json is looked at."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.iterdir() if (p / MANIFEST).is_file())
    return []


def optional_graph(info: dict, role: str) -> dict | None:
    """The manifest entry of an optional graph (OPTIONAL_GRAPH_IO), None when the package has none.

    Raises:
        ModelError: the entry exists but names no file listed in `files`.
    """
    g = (info.get("graphs") or {}).get(role)
    if g is None:
        return None
    if not isinstance(g, dict) or not isinstance(g.get("file"), str) or g["file"] not in info.get("files", {}):
        raise ModelError(f"model {info.get('name')!r}: graph {role!r} needs a file listed in 'files'")
    return g


def int8_agreement(entry: dict) -> float | None:
    """The agreement an `int8` section vouches for: the lower of `agreement_recon` and
    `agreement_prior` (None when either is missing or not a number)."""
    vals = [entry.get("agreement_recon"), entry.get("agreement_prior")]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return None
    return float(min(vals))


def int8_step(info: dict) -> tuple[dict | None, str]:
    """`int8_graph(info, "decoder_step")`."""
    return int8_graph(info, "decoder_step")


def int8_graph(info: dict, role: str) -> tuple[dict | None, str]:
    """The manifest's int8 version of a graph (INT8_GRAPHS: decoder_step, encoder), if it has a usable one.

    The section (`int8` for the step, `int8_encoder` for the encoder; written by `python -m
    export_onnx add-int8`): file (or null when refused), sha256 (also in `files`), source_sha256 (the
    sha256 of the float graph it was quantised from), agreement_recon, agreement_prior, n_windows,
    n_prior, per_channel, min_agreement, usable, reason, ...

    Returns:
        (the section, "") when it names a file listed in `files` with the same sha256, made from the
        package's current float graph; else (None, why not) — no section, refused at export, or
        inconsistent. The agreement gate itself is the runtime's choice (bridge.runtime.engine).

    Raises:
        KeyError: a role without int8 version.
    """
    key, _ = INT8_GRAPHS[role]
    what = "decoder step" if role == "decoder_step" else role
    entry = info.get(key)
    if entry is None:
        return None, f"the package has no int8 {what} (python -m export_onnx add-int8 adds one)"
    if not isinstance(entry, dict):
        return None, f"the manifest's {key} section is not an object"
    fname = entry.get("file")
    if not fname:
        return None, f"add-int8 refused it: {entry.get('reason') or 'no file'}"
    files = info.get("files") or {}
    if not isinstance(fname, str) or fname not in files or files[fname] != entry.get("sha256"):
        return None, f"the {key} section names {fname!r}, which is not listed in 'files' with its sha256"
    source = ((info.get("graphs") or {}).get(role) or {}).get("file")
    if entry.get("source_sha256") != files.get(source):
        return None, (f"{fname} was quantised from another {source} (the package was re-exported): "
                      "run python -m export_onnx add-int8 again")
    return entry, ""


def named_section(package_dir, info: dict, key: str, field: str) -> tuple[dict, str] | None:
    """A manifest section that names one entry of the package directory in `field` (the sampler's
    folder, the prior's file): (section, name), or None when the manifest has no such section.

    Raises:
        ModelError: not an object with a string `field`, or a name that is not a plain entry of the
            package directory (a path, "", "." or "..").
    """
    entry = info.get(key)
    if entry is None:
        return None
    path = Path(package_dir)
    if not isinstance(entry, dict) or not isinstance(entry.get(field), str):
        raise ModelError(f"{path}/model.json: '{key}' must be an object with a '{field}'")
    name = entry[field]
    if Path(name).name != name or name in ("", ".", ".."):
        raise ModelError(f"{path}/model.json: the {key} {field} {name!r} must be a plain name inside the package")
    return entry, name


SAMPLER_KEY = "sampler"
SAMPLER_DIR = "sampler"
# what must match between a package and its sampler: the sampler's notes replace the package's own
SAMPLER_FIELDS = ("kind", "bars", "steps_per_bar", "num_steps", "tracks")


def sampler_entry(package_dir, info: dict) -> dict | None:
    """The manifest's `sampler` section, checked, or None when the package has no sampler.

    A package may carry a second, whole package in a subdirectory that `sample` (prior samples)
    decodes with, while every op that encodes (reconstruct, interpolate, morph, knobs, variations,
    palettes) uses the package itself: MusicVAE's reconstruction and prior sampling pull against each
    other, so a high-KL model (faithful reconstructions) ships with a low-KL one (prior samples that
    sound like the data), as Magenta's lokl/hikl checkpoints do. The section, written by
    `python -m export_onnx add-sampler`: dir (SAMPLER_DIR), name, sha256 (of the sampler's
    model.json; its own `files` seal its graphs), why (free text for the card).

    Raises:
        ModelError: a malformed section, a dir that is not a plain subdirectory name, a missing or
            changed sampler manifest, or a sampler whose SAMPLER_FIELDS differ from the package's.
    """
    named = named_section(package_dir, info, SAMPLER_KEY, "dir")
    if named is None:
        return None
    entry, d = named
    path = Path(package_dir)
    manifest = path / d / MANIFEST
    if not manifest.is_file():
        raise ModelError(f"{path}: the sampler package {d}/ is missing")
    if sha256_file(manifest) != entry.get("sha256"):
        raise ModelError(f"{manifest}: sha256 mismatch with the package's sampler section")
    sub = parse_manifest(path / d)
    diff = [k for k in SAMPLER_FIELDS if sub.get(k) != info.get(k)]
    if diff:
        raise ModelError(f"{path}: the sampler differs from the package in {', '.join(diff)}")
    return entry


def list_models(models_dir=None) -> list[dict]:
    """The packages in `models_dir` (a directory or a list; default: `search_dirs()`), reading only
    their manifests; an earlier directory shadows a later one, as in `find_model`.

    Returns:
        One dict per package, sorted by name: name, path, kind, bars, hierarchical, z_size,
        attributes; a package whose manifest is broken has name, path and `error` instead.
    """
    dirs = search_dirs() if models_dir is None else [Path(models_dir)] if isinstance(
        models_dir, (str, os.PathLike)) else [Path(d) for d in models_dir]
    out, seen = [], set()
    for d in dirs:
        if not d.is_dir():
            continue
        for pkg in sorted(p for p in d.iterdir() if (p / MANIFEST).is_file()):
            if pkg.name in seen:
                continue
            seen.add(pkg.name)
            try:
                info = read_manifest(pkg)
                out.append({"name": pkg.name, "path": str(pkg), "kind": info["kind"], "bars": info["bars"],
                            "hierarchical": info["hierarchical"], "z_size": info["z_size"],
                            "attributes": sorted(info.get("attributes") or {})})
            except ModelError as e:
                out.append({"name": pkg.name, "path": str(pkg), "error": str(e)})
    return sorted(out, key=lambda m: m["name"])
