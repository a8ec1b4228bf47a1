"""The one resolver for a model's named latent vectors: attribute vectors and directions.

model.json holds two tables (written by export_onnx.export from runs/<name>/directions.json):
`attributes {name: {vector, effect, ...}}` (or `{name: [floats]}`) and `directions [{name, kind,
vector, effect, ...}]`. The engine (`Model.attribute`), the daemon's `attribute` / `models` ops and
the live knobs all read them through `direction_table`, so they agree on names, order and vectors.

Precedence: the `attributes` entries come first, in their order; then every `directions` entry
whose name is not an attribute, in its order. A name in both tables resolves to the attribute
entry. (The exporter writes the same vector under both, so this only decides odd hand-made
packages.) A knob's index is the position in this table.

Numpy only.
"""
from __future__ import annotations

import numpy as np

from .errors import DirectionError, ModelError


def direction_table(info: dict) -> list[dict]:
    """Every named latent vector of a manifest, in resolution order.

    Args:
        info: a parsed model.json.

    Returns:
        One dict per name: `name`, `vector` (as stored) and the entry's other fields (kind, effect,
        ...); attribute entries default `kind` to "attribute".
    """
    out, seen = [], set()
    for name, entry in (info.get("attributes") or {}).items():
        entry = dict(entry) if isinstance(entry, dict) else {"vector": entry}
        if "vector" in entry:
            out.append({"name": name, "kind": "attribute", **entry})
            seen.add(name)
    for entry in info.get("directions") or []:
        if isinstance(entry, dict) and "name" in entry and "vector" in entry and entry["name"] not in seen:
            out.append(dict(entry))
            seen.add(entry["name"])
    return out


def direction_names(info: dict) -> list[str]:
    """The names of `direction_table(info)`, in its order."""
    return [d["name"] for d in direction_table(info)]


def resolve(info: dict, key) -> tuple[int, dict]:
    """The entry named `key` (a str) or at position `key` (an int) of `direction_table(info)`.

    Args:
        info: a parsed model.json.
        key: a direction name or an index into the table.

    Returns:
        (index, entry).

    Raises:
        DirectionError: the model has no such name or index (or no directions at all), or `key` is
            neither a name nor an index.
    """
    table = direction_table(info)
    model = info.get("name")
    if not table:
        raise DirectionError(f"model {model!r} ships no latent directions "
                             "(export it with runs/<name>/directions.json)")
    if isinstance(key, bool) or not isinstance(key, (int, str)):
        raise DirectionError(f"a direction is a name or an index, got {key!r}")
    if isinstance(key, int):
        if not 0 <= key < len(table):
            raise DirectionError(f"direction index {key} out of range 0..{len(table) - 1}")
        return key, table[key]
    for i, d in enumerate(table):
        if d["name"] == key:
            return i, d
    raise DirectionError(f"model {model!r} has no direction {key!r} (its attributes and directions: "
                         f"{', '.join(d['name'] for d in table)})")


def direction_vector(info: dict, key, z_size: int | None = None) -> np.ndarray:
    """The vector of `resolve(info, key)` as float32 (z,).

    Raises:
        DirectionError: as `resolve`.
        ModelError: the stored vector does not have `z_size` (default: info["z_size"]) values.
    """
    _, entry = resolve(info, key)
    vec = np.asarray(entry["vector"], dtype=np.float32)
    z_size = info.get("z_size") if z_size is None else z_size
    if vec.ndim != 1 or (z_size is not None and vec.shape != (z_size,)):
        raise ModelError(f"model {info.get('name')!r}: direction {entry['name']!r} has {vec.shape} values, "
                         f"z has {z_size}")
    return vec
