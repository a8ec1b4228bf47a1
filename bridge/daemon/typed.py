"""Protocol 1.2's symbol-free forms (docs/osc-protocol.md, "Typed forms"): the high-rate requests as
plain OSC numbers, and /bridge/seq with its notes as numbers instead of a JSON string.

Why: Max (the Live device's `[udpsend]`/`[udpreceive]`) interns every string argument as a symbol
for the life of the process, so a request or reply whose JSON text differs every time (a song
position, a knob value, a sequence) grows Max's symbol table without end. Numbers are not interned,
and the few strings left here (a model or direction name, an extras key) come from a fixed set.

Requests: `/bridge/transport` and `/bridge/knob` may send their fields as typed arguments after the
id (`TRANSPORT`, `KNOB`), optionally followed by one JSON object string holding the fields that do
not change from message to message (scale, temperature, seed, token, session: the same text each
time, interned once). `TypedForm.fields` turns the arguments into the op's usual field dict, so the
op validates them exactly as the JSON form's; a typed request is answered by a typed `/bridge/ok`
(`TypedForm.reply_args`).

Replies: a client that says hello with `"notes_format": "numeric"` gets every /bridge/seq as
`numeric_sequence_messages` lays it out; `decode_numeric_seq` reads one back (the Python client,
the tests).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..core.errors import BadRequest
from . import values
from .protocol import INT32_MAX, INT32_MIN, MAX_REPLY_BYTES, build_message

NOTES_FORMATS = ("json", "numeric")
NOTE_ARGS = 5                    # i pitch, f start_beat, f duration_beats, i velocity, i track
MAX_NUMERIC_NOTES = 256          # notes per numeric /bridge/seq message (a precaution for Max: see the docs)


@dataclass(frozen=True)
class Slot:
    """One positional argument of a typed request: the field it sets, whether it is required, and
    what it may be: "n" a number (OSC i, h, f, d, or T/F), "s" a string, "ns" either."""
    name: str
    kinds: str
    required: bool = True


@dataclass(frozen=True)
class TypedForm:
    """The typed form of one op: its positional arguments and the fields of its typed ok reply
    ((field, OSC tag) pairs, tags "i", "f" or "s")."""
    op: str
    slots: tuple[Slot, ...]
    reply: tuple[tuple[str, str], ...]

    @property
    def usage(self) -> str:
        """The form as documented, e.g. `/bridge/knob id model direction value [json]`."""
        parts = [s.name if s.required else f"[{s.name}]" for s in self.slots]
        return f"/bridge/{self.op} id {' '.join(parts)} [json]"

    def fields(self, args: list) -> dict:
        """The request's field dict from the arguments after the id.

        A trailing string is the optional JSON object of the other fields (parsed and bounded by
        bridge.daemon.values) when it comes after every slot, or where its slot takes no string and
        it starts with "{". The op then validates the fields as it validates the JSON form's.

        Raises:
            BadRequest: too few or too many arguments, an argument of the wrong OSC type (a string
                for a number, a blob, nil), a NaN or infinite float, bad JSON, or a field given both
                as an argument and in the JSON.
        """
        args = list(args)
        required = sum(1 for s in self.slots if s.required)
        text = None
        n = len(args)
        if n and isinstance(args[-1], str) and (n > len(self.slots) or (
                "s" not in self.slots[n - 1].kinds and args[-1].lstrip().startswith("{"))):
            text = args.pop()
        if len(args) < required:
            raise BadRequest(f"{self.op} (typed form {self.usage}): needs at least {required} arguments after "
                             f"the id, got {len(args)}")
        if len(args) > len(self.slots):
            raise BadRequest(f"{self.op} (typed form {self.usage}): at most {len(self.slots)} arguments and one "
                             f"JSON object after the id, got {len(args) + (text is not None)}")
        out = {}
        for i, (slot, v) in enumerate(zip(self.slots, args)):
            out[slot.name] = _check(self.op, slot, i + 2, v)
        if text is not None:
            try:
                more = values.parse_object(text)
            except BadRequest as e:
                raise BadRequest(f"{self.op}: the JSON object after the typed arguments: {e.message}") from None
            both = sorted(set(more) & set(out))
            if both:
                raise BadRequest(f"{self.op}: {', '.join(repr(k) for k in both)} given both as an argument and in "
                                 f"the JSON object")
            more.update(out)
            out = more
        return out

    def reply_args(self, result: dict) -> tuple:
        """The typed /bridge/ok arguments (after the id) for the op's result dict."""
        out = []
        for name, tag in self.reply:
            v = result.get(name)
            if tag == "s":
                out.append(str(v))
            elif tag == "i":
                out.append(int(v))
            else:
                out.append(float(v))
        return tuple(out)


def _check(op: str, slot: Slot, position: int, v):
    where = f"{op}: argument {position} ({slot.name!r})"
    if isinstance(v, str):
        if "s" not in slot.kinds:
            raise BadRequest(f"{where} must be a number, got {values.show(v)}")
        return v
    if "n" not in slot.kinds or v is None or isinstance(v, (bytes, bytearray)):
        what = "a name or a number" if slot.kinds == "ns" else ("a string" if slot.kinds == "s" else "a number")
        got = "nil" if v is None else ("a blob" if isinstance(v, (bytes, bytearray)) else values.show(v))
        raise BadRequest(f"{where} must be {what}, got {got}")
    if isinstance(v, float) and not math.isfinite(v):
        raise BadRequest(f"{where}: {v!r} is not a finite number")
    return v


TRANSPORT = TypedForm(
    "transport",
    (Slot("tempo", "n"), Slot("beat", "n"), Slot("playing", "n", False), Slot("numerator", "n", False),
     Slot("denominator", "n", False)),
    (("tempo", "f"), ("beat", "f"), ("bar", "i"), ("playing", "i")))

KNOB = TypedForm(
    "knob",
    (Slot("model", "s"), Slot("direction", "ns"), Slot("value", "n")),
    (("direction", "s"), ("index", "i"), ("value", "f")))

FORMS: dict[str, TypedForm] = {f.op: f for f in (TRANSPORT, KNOB)}


def is_typed(op: str, params: list) -> bool:
    """Whether a request's arguments (id first) are in the op's typed form rather than `id json`:
    the op has one and there are more than two arguments, or the second is not a string."""
    return op in FORMS and (len(params) > 2 or (len(params) == 2 and not isinstance(params[1], str)))


# ---- numeric /bridge/seq ---------------------------------------------------------------------------

_INDEXED = re.compile(r"^(.*)\[(\d+)\]$")


def flatten_extras(obj: dict, prefix: str = "") -> list[tuple[str, object]]:
    """The extra keys of a sequence as (path, value) pairs of OSC scalars: nested objects as
    `knob.value`, lists as `tracks[1]`, booleans as 1/0, null values left out."""
    out: list[tuple[str, object]] = []
    items = obj.items() if isinstance(obj, dict) else ((f"[{i}]", v) for i, v in enumerate(obj))
    for k, v in items:
        key = f"{prefix}{k}" if isinstance(obj, list) else (f"{prefix}.{k}" if prefix else str(k))
        if hasattr(v, "item") and not isinstance(v, (str, bytes)):
            v = v.item()        # numpy scalar
        if v is None:
            continue
        if isinstance(v, (dict, list, tuple)):
            out.extend(flatten_extras(dict(v) if isinstance(v, dict) else list(v), key))
        elif isinstance(v, bool):
            out.append((key, int(v)))
        elif isinstance(v, int):
            out.append((key, v if INT32_MIN <= v <= INT32_MAX else float(v)))
        elif isinstance(v, float):
            out.append((key, v))
        else:
            out.append((key, str(v)))
    return out


def _note_args(row) -> tuple:
    velocity = row[3] if len(row) > 3 else 100
    track = row[4] if len(row) > 4 else 0
    return (int(row[0]), float(row[1]), float(row[2]), int(velocity), int(track))


def numeric_sequence_messages(request_id: int, model_name: str, bars: int, seqs: list,
                              extras: list[dict] | None = None) -> list[tuple]:
    """The /bridge/seq argument tuples of `notes_format` "numeric" for a list of sequences (lists of
    note rows):

        id, index, count, model, bars, part, parts, n_extras, (key, value) x n_extras,
        n_notes, (pitch, start_beat, duration_beats, velocity, track) x n_notes

    `extras[i]` overrides the header keys as in the JSON form (`index`, `bars`); the other keys go
    out flattened (`flatten_extras`). A sequence is split into parts of at most MAX_NUMERIC_NOTES
    notes and MAX_REPLY_BYTES bytes, each repeating the header and extras."""
    count = len(seqs)
    out = []
    for position, rows in enumerate(seqs):
        head = {"index": position, "bars": bars}
        more = dict(extras[position]) if extras is not None else {}
        head.update({k: more.pop(k) for k in ("index", "bars") if k in more})
        pairs = flatten_extras(more)
        kv = tuple(x for pair in pairs for x in pair)
        index, seq_bars = int(head["index"]), int(head["bars"])
        base = len(build_message("/bridge/seq", (request_id, index, count, model_name, seq_bars, 0, 1,
                                                 len(pairs)) + kv + (0,)))
        per_note = 4 * NOTE_ARGS + NOTE_ARGS      # 20 bytes of values, 5 type tags
        fit = max(1, min(MAX_NUMERIC_NOTES, (MAX_REPLY_BYTES - base - 4) // per_note))
        notes = [_note_args(r) for r in rows]
        chunks = [notes[i:i + fit] for i in range(0, len(notes), fit)] or [[]]
        for part, chunk in enumerate(chunks):
            flat = tuple(x for n in chunk for x in n)
            out.append((request_id, index, count, model_name, seq_bars, part, len(chunks), len(pairs))
                       + kv + (len(chunk),) + flat)
    return out


def _set_path(obj: dict, path: str, value) -> None:
    parts = path.split(".")
    cur = obj
    for i, name in enumerate(parts):
        m = _INDEXED.match(name)
        last = i == len(parts) - 1
        if m:
            key, idx = m.group(1), int(m.group(2))
            lst = cur.setdefault(key, [])
            while len(lst) <= idx:
                lst.append(None)
            if last:
                lst[idx] = value
            else:
                if not isinstance(lst[idx], dict):
                    lst[idx] = {}
                cur = lst[idx]
        elif last:
            cur[name] = value
        else:
            nxt = cur.get(name)
            if not isinstance(nxt, dict):
                nxt = cur[name] = {}
            cur = nxt


def decode_numeric_seq(args: list) -> tuple[int, int, int, dict]:
    """(id, index, count, the sequence as the JSON form's object) from a numeric /bridge/seq's
    arguments: model, index, bars, part, parts, notes ([pitch, start, duration, velocity, track]
    rows) and the extras, nested again.

    Raises:
        ValueError: the arguments do not follow the layout.
    """
    try:
        rid, index, count, model, bars, part, parts, n_extra = args[:8]
        pos = 8
        obj = {"model": model, "index": index, "bars": bars, "part": part, "parts": parts}
        for _ in range(int(n_extra)):
            _set_path(obj, str(args[pos]), args[pos + 1])
            pos += 2
        n_notes = int(args[pos])
        pos += 1
        flat = args[pos:]
        if len(flat) != NOTE_ARGS * n_notes:
            raise ValueError(f"{n_notes} notes announced, {len(flat)} note values present")
        obj["notes"] = [[int(flat[i]), float(flat[i + 1]), float(flat[i + 2]), int(flat[i + 3]), int(flat[i + 4])]
                        for i in range(0, len(flat), NOTE_ARGS)]
    except (IndexError, TypeError) as e:
        raise ValueError(f"not a numeric /bridge/seq: {e}") from None
    return int(rid), int(index), int(count), obj


def decode_typed_ok(op: str, args: list) -> dict:
    """The result dict of a typed /bridge/ok (its arguments after the id) to a typed request of `op`.

    Raises:
        ValueError: `op` has no typed form, or the arguments do not match its reply.
    """
    form = FORMS.get(op)
    if form is None or len(args) != len(form.reply):
        raise ValueError(f"not a typed reply of {op!r}: {args!r}")
    return {name: v for (name, _), v in zip(form.reply, args)}
