"""The one validation layer every request value passes through (docs/osc-protocol.md, "Values").

Two stages, so that nothing a client can send reaches an op as a value Python cannot handle:

1. `parse_object(text)`: the request's JSON object, strict (no NaN/Infinity), with every number
   bounded *while parsing*: an integer literal of more than 20 characters, or one outside
   -2**63..2**64, and a float literal that overflows to infinity (`1e400`) are refused, naming
   the field where they sit (`'echo'[2].a`); nesting deeper than `MAX_DEPTH` and more than
   `MAX_NODES` values are refused too. After it, every number in the tree is a finite float or
   an int of at most 64 bits, anywhere, including fields no op reads (`echo`, unknown fields).
2. The typed checks (`integer`, `number`, `string`, `int_pair`), used by `Request`'s getters
   (bridge.daemon.registry) and the live ops: type, range, and an integer never converted before
   it is bounded. Every failure is a `BadRequest` (`TooLarge` for sizes) naming the field.
"""
from __future__ import annotations

import json
import math

from ..core.errors import BadRequest, BridgeError

MAX_DEPTH = 32            # nesting of the request object (note rows are 3 deep, palette corners 4)
MAX_NODES = 100_000       # values in one request (a 60 kB datagram holds at most ~30,000)
MAX_INT_CHARS = 20        # "-18446744073709551616" is 21: longer literals are refused unparsed
INT_MIN, INT_MAX = -(2 ** 63), 2 ** 64
EXACT_FLOAT_INT = 2 ** 53  # a float holding an integer is taken as one only up to here


class BadNumber:
    """A number literal the parser refused; it stays in the tree until the walk names its field."""
    __slots__ = ("text", "why")

    def __init__(self, text: str, why: str):
        self.text, self.why = text, why

    def __repr__(self) -> str:
        return self.text if len(self.text) <= 24 else f"{self.text[:12]}...({len(self.text)} characters)"


def _parse_int(s: str):
    if len(s) > MAX_INT_CHARS:
        return BadNumber(s, f"out of range (an integer of {len(s.lstrip('-'))} digits; integers have at most 64 bits)")
    v = int(s)
    if not INT_MIN <= v <= INT_MAX:
        return BadNumber(s, "out of range (integers are -2**63..2**64)")
    return v


def _parse_float(s: str):
    v = float(s)
    if math.isinf(v):
        return BadNumber(s, "not a finite number (it overflows a 64-bit float)")
    return v


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_float=_parse_float, parse_constant=_reject_constant)


def path_text(path: list) -> str:
    """'key'[2].inner -> the field named as in error messages."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        elif not out:
            out = repr(p)
        else:
            out += f".{p}"
    if len(out) > 120:
        out = out[:60] + "..." + out[-40:]
    return out or "the request"


def parse_object(text: str, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> dict:
    """The JSON object of a request, every value bounded (see the module docstring).

    Raises:
        BadRequest: not JSON, not an object, NaN/Infinity, a number out of range (naming its field),
            nested deeper than `max_depth`, more than `max_nodes` values.
    """
    try:
        obj = _DECODER.decode(text)
    except RecursionError:
        raise BadRequest(f"bad JSON: nested too deep (the limit is {max_depth})") from None
    except ValueError as e:   # JSONDecodeError, and ValueError from int() past Python's digit limit
        raise BadRequest(f"bad JSON: {e}") from None
    if not isinstance(obj, dict):
        raise BadRequest(f"bad JSON: the JSON must be an object, got {type(obj).__name__}")
    check_tree(obj, max_depth, max_nodes)
    return obj


def check_tree(obj, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> None:
    """Walk a parsed tree without recursion: depth, size, and any BadNumber, named by its path.

    Raises:
        BadRequest: as `parse_object`.
    """
    nodes = 0
    stack = [(obj, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        nodes += len(node)
        if nodes > max_nodes:
            raise BadRequest(f"the request holds more than {max_nodes} JSON values")
        for k, v in (node.items() if node.__class__ is dict else enumerate(node)):
            cls = v.__class__
            if cls is dict or cls is list:
                if depth >= max_depth:
                    raise BadRequest(f"{path_text(list(path + (k,)))}: JSON nested deeper than {max_depth} levels")
                if v:
                    stack.append((v, depth + 1, path + (k,)))
            elif cls is BadNumber:
                raise BadRequest(f"{path_text(list(path + (k,)))}: {v!r} is {v.why}")


# ---- typed checks ----------------------------------------------------------------------------------

def is_int(v) -> bool:
    """An int that is not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    """A finite int or float that is not a bool (ints of any size: float(v) never raises here)."""
    if isinstance(v, bool):
        return False
    if isinstance(v, float):
        return math.isfinite(v)
    return isinstance(v, int) and -2 ** 1000 < v < 2 ** 1000


def show(v, limit: int = 80) -> str:
    """A client's value for an error message: repr, cut (a huge value never makes a huge message)."""
    if is_int(v) and abs(v) > 10 ** 30:
        return f"an integer of {len(str(abs(v)))} digits"
    text = repr(v)
    return text if len(text) <= limit else text[:limit] + "..."


def integer(name: str, v, lo: int | None = None, hi: int | None = None,
            over: type[BridgeError] = BadRequest) -> int:
    """An integer value (a float holding an integer up to 2**53 is accepted), bounded before any
    conversion.

    Raises:
        BadRequest: not an integer, below `lo`. `over`: above `hi`.
    """
    if isinstance(v, float) and math.isfinite(v) and v.is_integer() and abs(v) <= EXACT_FLOAT_INT:
        v = int(v)
    if not is_int(v):
        raise BadRequest(f"'{name}' must be an integer, got {show(v)}")
    if lo is not None and v < lo:
        raise BadRequest(f"'{name}' must be >= {lo}, got {show(v)}")
    if hi is not None and v > hi:
        raise over(f"'{name}' must be <= {hi}, got {show(v)}")
    return v


def number(name: str, v, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> float:
    """A finite number in lo..hi (lo excluded with `lo_open`), as a float.

    Raises:
        BadRequest: not a finite number, out of range.
    """
    if not is_number(v):
        raise BadRequest(f"'{name}' must be a finite number, got {show(v)}")
    if (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and v > hi):
        low = "" if lo is None else (f"({lo:g}" if lo_open else f"{lo:g}")
        raise BadRequest(f"'{name}' must be in {low}..{'' if hi is None else f'{hi:g}'}, got {show(v)}")
    return float(v)


def string(name: str, v, choices: tuple | None = None, max_len: int | None = None) -> str:
    """A string, one of `choices` when given.

    Raises:
        BadRequest: not a string, not one of `choices`, longer than `max_len`.
    """
    if not isinstance(v, str):
        raise BadRequest(f"'{name}' must be a string, got {show(v)}")
    if choices is not None and v not in choices:
        raise BadRequest(f"'{name}' must be one of {', '.join(choices)}, got {show(v)}")
    if max_len is not None and len(v) > max_len:
        raise BadRequest(f"'{name}' is longer than {max_len} characters")
    return v


def boolean(name: str, v) -> bool:
    """true/false, or 1/0.

    Raises:
        BadRequest: anything else.
    """
    if isinstance(v, bool):
        return v
    if is_int(v) and v in (0, 1):
        return bool(v)
    raise BadRequest(f"'{name}' must be true/false (or 1/0), got {show(v)}")


def int_pair(name: str, v, lo: int, hi: int) -> tuple[int, int]:
    """[a, b], two integers in lo..hi (a time signature).

    Raises:
        BadRequest: not a list of two integers in range.
    """
    if not isinstance(v, list) or len(v) != 2:
        raise BadRequest(f"'{name}' must be [numerator, denominator], got {show(v)}")
    return (integer(f"{name}[0]", v[0], lo, hi), integer(f"{name}[1]", v[1], lo, hi))
