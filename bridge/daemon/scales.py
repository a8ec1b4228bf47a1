"""The `scale` request field (docs/osc-protocol.md, "Scale"): validation and the decode mask.

`scale` is optional on sample, decode, reconstruct, interpolate, attribute, palette, variations,
morph, knob and accompany: `{"root": 0..11, "intervals": [distinct integers 0..11]}` (Live 12's
`Song.root_note` and `Song.scale_intervals`). Absent or null: no constraint. Every refusal is a
`BadRequest` naming the field, through the typed checks of `bridge.daemon.values`.
"""
from __future__ import annotations

import numpy as np

from ..core.errors import BadRequest
from ..core.scale import PITCH_CLASSES, Scale, logit_mask
from . import values


def check_scale(name: str, v) -> Scale | None:
    """A scale object -> Scale (None for None).

    Raises:
        BadRequest: not an object, unknown keys, a root or interval that is not an integer 0..11,
            no intervals, repeated intervals.
    """
    if v is None:
        return None
    if not isinstance(v, dict):
        raise BadRequest(f"'{name}' must be an object {{\"root\": 0..11, \"intervals\": [0..11, ...]}}, got {values.show(v)}")
    unknown = sorted(set(v) - {"root", "intervals"})
    if unknown:
        raise BadRequest(f"'{name}' has unknown keys {values.show(unknown)} (it takes root and intervals)")
    if v.get("root") is None:
        raise BadRequest(f"'{name}.root' is required")
    root = values.integer(f"{name}.root", v["root"], 0, PITCH_CLASSES - 1)
    raw = v.get("intervals")
    if not isinstance(raw, list) or not 1 <= len(raw) <= PITCH_CLASSES:
        raise BadRequest(f"'{name}.intervals' must be a list of 1..12 integers 0..11, got {values.show(raw)}")
    intervals = [values.integer(f"{name}.intervals[{i}]", x, 0, PITCH_CLASSES - 1) for i, x in enumerate(raw)]
    if len(set(intervals)) != len(intervals):
        raise BadRequest(f"'{name}.intervals' repeats an interval: {values.show(raw)}")
    return Scale(root, tuple(sorted(intervals)))


def request_scale(request) -> Scale | None:
    """The request's `scale` field, checked (None when absent)."""
    return check_scale("scale", request.fields.get("scale"))


def request_mask(request, model) -> np.ndarray | None:
    """The logit mask of the request's scale for `model` (None: no scale, or nothing to mask)."""
    return logit_mask(model.codec, request_scale(request))
