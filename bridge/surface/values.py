"""The typed checks of a surface message: what each action takes, and the one error it raises.

Surfaces send plain OSC arguments (TouchOSC: floats; Lemur: floats or ints; Open Stage Control:
anything), so numbers are accepted as int or float, and a button's press (non-zero) is told apart
from its release (0). Every refusal is a `BadRequest` whose message names the address and says
what it takes, e.g. `/lb/knob/1 takes one number 0..1, got 1.5`.
"""
from __future__ import annotations

import math

from ..core.errors import BadRequest


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _shown(v) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def unit(address: str, args: list, count: int = 1) -> list[float]:
    """`count` finite numbers in 0..1 (a fader, a knob, the two axes of a pad).

    Raises:
        BadRequest: another number of arguments, a non-number, NaN/inf or out of 0..1.
    """
    what = "one number 0..1" if count == 1 else f"{count} numbers 0..1"
    if len(args) != count:
        raise BadRequest(f"{address} takes {what}, got {len(args)} argument{'s' if len(args) != 1 else ''}")
    out = []
    for v in args:
        if not _is_number(v) or not math.isfinite(v) or not 0.0 <= v <= 1.0:
            raise BadRequest(f"{address} takes {what}, got {_shown(v)}")
        out.append(float(v))
    return out


def number(address: str, args: list, lo: float, hi: float) -> float:
    """One finite number in lo..hi.

    Raises:
        BadRequest: not exactly one number in range.
    """
    if len(args) != 1 or not _is_number(args[0]) or not math.isfinite(args[0]) or not lo <= args[0] <= hi:
        got = _shown(args[0]) if len(args) == 1 else f"{len(args)} arguments"
        raise BadRequest(f"{address} takes one number {lo:g}..{hi:g}, got {got}")
    return float(args[0])


def pressed(address: str, args: list) -> bool:
    """A trigger: no argument, or one number / bool (a button: non-zero = press, 0 = release).

    Returns:
        True for a press (act), False for a release (ignore).

    Raises:
        BadRequest: more than one argument, or one that is not a number or bool.
    """
    if not args:
        return True
    if len(args) > 1 or not isinstance(args[0], (int, float, bool)):
        raise BadRequest(f"{address} is a trigger: no argument, or one number (non-zero = press), "
                         f"got {_shown(args if len(args) > 1 else args[0])}")
    return bool(args[0]) and not (isinstance(args[0], float) and math.isnan(args[0]))


def model_name(address: str, args: list, names: list[str]) -> str:
    """A loaded model: its name (s), or its index in `names` (i / f holding an integer: a radio button).

    Raises:
        BadRequest: not one string or index, or no such model.
    """
    if len(args) != 1:
        raise BadRequest(f"{address} takes one model name (or index), got {len(args)} arguments")
    v = args[0]
    if isinstance(v, str):
        if v not in names:
            raise BadRequest(f"{address}: no model {_shown(v)} is loaded (loaded: {', '.join(names) or 'none'})")
        return v
    if _is_number(v) and math.isfinite(v) and float(v).is_integer() and 0 <= v < len(names):
        return names[int(v)]
    raise BadRequest(f"{address} takes a model name or an index 0..{len(names) - 1}, got {_shown(v)}")
