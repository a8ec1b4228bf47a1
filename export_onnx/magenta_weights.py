"""magenta.js checkpoints on disk: a tfjs weights manifest and its binary shards.

A checkpoint directory holds `config.json` (the model's `MusicVAESpec`), `weights_manifest.json` (a
list of groups `{paths: [shard files], weights: [{name, shape, dtype, quantization?}]}`) and the
shards. Within a group the shards are concatenated and the weights laid end to end in manifest
order; a quantized weight is stored as `quantization.dtype` (uint8 / uint16: value = q * scale +
min; float16: IEEE half) and dequantized to float32 exactly as tfjs does.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

MANIFEST = "weights_manifest.json"
CONFIG = "config.json"

_TFJS_DTYPE_BYTES = {"float32": 4, "int32": 4, "bool": 1, "uint8": 1, "uint16": 2, "float16": 2}
_NP_DTYPE = {"float32": "<f4", "int32": "<i4", "bool": "u1", "uint8": "u1", "uint16": "<u2", "float16": "<f2"}


class MagentaImportError(ValueError):
    """A checkpoint this importer cannot read or this project's model cannot represent."""


def read_weights(ckpt_dir) -> dict[str, np.ndarray]:
    """Reads every weight of a checkpoint directory's tfjs weights manifest.

    Returns:
      The weights by name, as float32 (int32 for integer weights) numpy arrays, dequantized.

    Raises:
      MagentaImportError: no or an unreadable manifest, a missing shard, an unsupported dtype or
        quantization, or shards whose length does not match the manifest.
    """
    ckpt_dir = Path(ckpt_dir)
    path = ckpt_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise MagentaImportError(f"{ckpt_dir}: no {MANIFEST} (not a magenta.js checkpoint directory)") from None
    except json.JSONDecodeError as e:
        raise MagentaImportError(f"{path}: not valid JSON ({e})") from None
    if isinstance(manifest, dict) and "weightsManifest" in manifest:   # a tfjs model.json
        manifest = manifest["weightsManifest"]
    if not isinstance(manifest, list):
        raise MagentaImportError(f"{path}: expected a list of weight groups")
    out: dict[str, np.ndarray] = {}
    for g, group in enumerate(manifest):
        if not isinstance(group, dict) or "paths" not in group or "weights" not in group:
            raise MagentaImportError(f"{path}: group {g} needs 'paths' and 'weights'")
        chunks = []
        for p in group["paths"]:
            shard = ckpt_dir / p
            if not shard.is_file():
                raise MagentaImportError(f"{path}: shard {p!r} of group {g} is missing")
            chunks.append(shard.read_bytes())
        buf = b"".join(chunks)
        offset = 0
        for spec in group["weights"]:
            name, shape, dtype = spec["name"], [int(d) for d in spec["shape"]], spec.get("dtype", "float32")
            size = int(np.prod(shape, dtype=np.int64)) if shape else 1
            q = spec.get("quantization")
            raw_dtype = q["dtype"] if q else dtype
            if raw_dtype not in _TFJS_DTYPE_BYTES:
                raise MagentaImportError(f"{path}: weight {name!r} has unsupported dtype {raw_dtype!r}")
            nbytes = size * _TFJS_DTYPE_BYTES[raw_dtype]
            if offset + nbytes > len(buf):
                raise MagentaImportError(f"{path}: the shards of group {g} end inside weight {name!r} "
                                         f"({len(buf)} bytes, need {offset + nbytes})")
            raw = np.frombuffer(buf, dtype=_NP_DTYPE[raw_dtype], count=size, offset=offset)
            offset += nbytes
            out[name] = _dequantize(name, raw, dtype, q).reshape(shape)
        if offset != len(buf):
            raise MagentaImportError(f"{path}: group {g} has {len(buf) - offset} bytes after its last weight")
    return out


def _dequantize(name: str, raw: np.ndarray, dtype: str, q: dict | None) -> np.ndarray:
    if q is None:
        if dtype == "float32":
            return raw.astype(np.float32)
        if dtype in ("int32", "bool"):
            return raw.astype(np.int32)
        raise MagentaImportError(f"weight {name!r}: unsupported dtype {dtype!r}")
    qd = q["dtype"]
    if qd in ("uint8", "uint16"):
        if "min" not in q or "scale" not in q:
            raise MagentaImportError(f"weight {name!r}: {qd} quantization without 'min' and 'scale'")
        # tfjs: values[i] = q * scale + min in double precision, stored as float32
        v = raw.astype(np.float64) * float(q["scale"]) + float(q["min"])
        return np.round(v).astype(np.int32) if dtype == "int32" else v.astype(np.float32)
    if qd == "float16":
        if dtype != "float32":
            raise MagentaImportError(f"weight {name!r}: float16 quantization of a {dtype} weight")
        return raw.astype(np.float32)
    raise MagentaImportError(f"weight {name!r}: unknown quantization dtype {qd!r} "
                             "(tfjs supports uint8, uint16 and float16)")


def write_checkpoint(ckpt_dir, config: dict, weights: dict[str, np.ndarray], quantize: str | None = None,
                     shard_bytes: int = 4 << 20) -> Path:
    """Write a magenta.js checkpoint directory (config.json, weights_manifest.json, shards).

    `quantize`: None (float32), "uint8" / "uint16" (affine, tfjs `{min, scale, dtype}`) or "float16".
    The inverse of `read_weights`; used to build test checkpoints.
    """
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    entries, blobs = [], []
    for name, arr in weights.items():
        arr = np.asarray(arr, dtype=np.float32)
        entry = {"name": name, "shape": list(arr.shape), "dtype": "float32"}
        if quantize in ("uint8", "uint16"):
            levels = 255 if quantize == "uint8" else 65535
            lo, hi = float(arr.min()), float(arr.max())
            scale = (hi - lo) / levels if hi > lo else 1.0
            qv = np.clip(np.round((arr.astype(np.float64) - lo) / scale), 0, levels)
            blobs.append(qv.astype(_NP_DTYPE[quantize]).tobytes())
            entry["quantization"] = {"min": lo, "scale": scale, "dtype": quantize}
        elif quantize == "float16":
            blobs.append(arr.astype("<f2").tobytes())
            entry["quantization"] = {"dtype": "float16"}
        elif quantize is None:
            blobs.append(arr.astype("<f4").tobytes())
        else:
            raise ValueError(f"unknown quantization {quantize!r}")
        entries.append(entry)
    data = b"".join(blobs)
    n = max(1, math.ceil(len(data) / shard_bytes))
    paths = []
    for i in range(n):
        fname = f"group1-shard{i + 1}of{n}"
        (ckpt_dir / fname).write_bytes(data[i * shard_bytes:(i + 1) * shard_bytes])
        paths.append(fname)
    (ckpt_dir / MANIFEST).write_text(json.dumps([{"paths": paths, "weights": entries}]))
    (ckpt_dir / CONFIG).write_text(json.dumps(config, indent=1))
    return ckpt_dir
