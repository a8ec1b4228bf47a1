"""The OSC protocol's wire side (docs/osc-protocol.md): addresses, limits of a datagram, encoding
of replies, and the one mapping from an exception to a `/bridge/error` reply.

Requests are `/bridge/<op> int32 id, string json`; replies go to the client's reply address:
`/bridge/ok id json`, `/bridge/seq id index count json` ... `/bridge/done id`, `/bridge/error id code
message`. The symbol-free forms of protocol 1.2 (typed transport and knob requests, numeric
/bridge/seq) are bridge.daemon.typed. No sockets here: bridge.daemon.session sends,
bridge.daemon.server receives.
"""
from __future__ import annotations

import json
import struct
from typing import Any

from ..core.errors import ERROR_CODES, BridgeError

PROTOCOL_VERSION = "1.2"      # 1.2: typed transport/knob requests, numeric /bridge/seq (bridge.daemon.typed)
OK, SEQ, DONE, ERROR = "/bridge/ok", "/bridge/seq", "/bridge/done", "/bridge/error"
REPLY_ADDRESSES = frozenset({OK, SEQ, DONE, ERROR})
PREFIX = "/bridge/"

# A reply datagram never exceeds this many bytes (IPv4 UDP carries at most 65507); sequences that
# would are split into parts (see sequence_messages).
MAX_REPLY_BYTES = 60000
MAX_DATAGRAM = 65507
MAX_ERROR_MESSAGE = 2000

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
_INT32, _FLOAT32 = struct.Struct(">i"), struct.Struct(">f")
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)   # one instance: no per-call setup


def dumps(obj: Any) -> str:
    """Compact JSON, no NaN/Infinity (the protocol is strict JSON)."""
    return _ENCODER.encode(obj)


def _osc_string(text: str) -> bytes:
    b = text.encode("utf-8") + b"\x00"
    return b + b"\x00" * (-len(b) % 4)


def build_message(address: str, args: tuple) -> bytes:
    """One OSC message. Encoded here rather than with python-osc's builder, which parses every
    datagram it builds again (a third of the cost of a 60 kB /bridge/seq).

    Raises:
        ValueError: an int that does not fit int32. TypeError: an argument OSC cannot carry.
    """
    tags, parts = [","], []
    for a in args:
        if hasattr(a, "item") and not isinstance(a, (bytes, bytearray, str)):
            a = a.item()  # numpy scalar
        if isinstance(a, bool):
            tags.append("T" if a else "F")
        elif isinstance(a, int):
            if not INT32_MIN <= a <= INT32_MAX:
                raise ValueError(f"OSC int argument {a} does not fit int32")
            tags.append("i")
            parts.append(_INT32.pack(a))
        elif isinstance(a, float):
            tags.append("f")
            parts.append(_FLOAT32.pack(a))
        elif isinstance(a, str):
            tags.append("s")
            parts.append(_osc_string(a))
        elif isinstance(a, (bytes, bytearray)):
            tags.append("b")
            parts.append(_INT32.pack(len(a)) + bytes(a) + b"\x00" * (-len(a) % 4))
        else:
            raise TypeError(f"cannot send {type(a).__name__} over OSC")
    return _osc_string(address) + _osc_string("".join(tags)) + b"".join(parts)


def sequence_messages(request_id: int, model_name: str, bars: int, seqs: list,
                      extras: list[dict] | None = None) -> list[tuple]:
    """The /bridge/seq messages (argument tuples) for a list of sequences (lists of note rows).

    One message per sequence; a sequence whose JSON would not fit one datagram is split into parts:
    every part repeats the header fields with "part" (0-based) and "parts", and the client
    concatenates the "notes" of the parts."""
    count = len(seqs)
    out = []
    for index, rows in enumerate(seqs):
        head = {"model": model_name, "index": index, "bars": bars}
        if extras is not None:
            head.update(extras[index])
        budget = MAX_REPLY_BYTES - len(dumps(head)) - 128
        notes_text = dumps(rows)
        if len(notes_text) <= budget:   # the common case: one part, no per-row sizing
            text = dumps(dict(head, part=0, parts=1))[:-1] + ',"notes":' + notes_text + "}"
            out.append((request_id, index, count, text))
            continue
        chunks, cur, size = [], [], 0
        for row in rows:
            rb = len(dumps(row)) + 1
            if cur and size + rb > budget:
                chunks.append(cur)
                cur, size = [], 0
            cur.append(row)
            size += rb
        chunks.append(cur)
        for part, chunk in enumerate(chunks):
            obj = dict(head, part=part, parts=len(chunks), notes=chunk)
            out.append((request_id, index, count, dumps(obj)))
    return out


def args_size(args: tuple) -> int:
    """About the bytes of an OSC message with these arguments, its address aside (for reply
    budgets; not exact): 4 per number, a string's bytes + 4, a type tag each, 16 of overhead."""
    n = 16 + len(args)
    for a in args:
        n += len(a.encode("utf-8")) + 4 if isinstance(a, str) else 4
    return n


def error_reply(exc: BaseException, what: str | None = None) -> tuple[str, str]:
    """The (code, message) of the /bridge/error reply for an exception: this is the one place that
    decides it. A BridgeError answers with its class's protocol code and its message; anything else
    is a bug: `internal`, with `what` (e.g. "knob decode failed") or the exception's type in front."""
    if isinstance(exc, BridgeError):
        code = exc.code if exc.code in ERROR_CODES else "internal"
        return code, exc.message[:MAX_ERROR_MESSAGE]
    head = what or type(exc).__name__
    return "internal", f"{head}: {exc}"[:MAX_ERROR_MESSAGE]
