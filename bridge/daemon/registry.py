"""The op registry, requests and limits: what an op module needs to add ops to the daemon.

An op is a function `handler(session, request)` under a name; the daemon routes `/bridge/<name>` to
it. Ops live in an `OpRegistry` object, built before the server and passed to it (as python-osc
passes a Dispatcher to its server); nothing registers itself on import. A module marks its handlers:

    from bridge.daemon import registry

    @registry.op("knob")
    def knob(session, request):
        model = request.model()                       # the "model" field -> a loaded model, or unknown_model
        value = request.number("value", lo=-1, hi=1)  # validated fields, bad_request on a wrong type
        ...
        return {"value": value}                       # a dict -> /bridge/ok id json

and whoever builds the daemon includes the module: `OpRegistry().include(bridge.daemon.ops, module)`
(`python -m bridge serve` includes the core ops, the live ops and every `--ops-module`). `include`
takes the marked functions defined in a module, or the marked methods of an object.

What a handler may do:
- return a dict: sent as `/bridge/ok id json`;
- return `Sequences(model, seqs)`: streamed as `/bridge/seq` messages then `/bridge/done id`;
- return None after replying itself through `session` (session.ok / session.sequences / session.send);
  a streaming op may keep pushing with `session.send(...)` from its own thread later;
- raise a BridgeError (bridge.core.errors: BadRequest, TooLarge, UnknownModel, ... or any error that
  carries a code, such as CodecError): sent as `/bridge/error id code message`; any other exception
  is logged with its traceback and answered with `internal` (bridge.daemon.protocol.error_reply).

`serial=False` runs an op as soon as a worker is free instead of behind the client's earlier
requests (for ops such as `stop` that must not wait for a long palette); its reply may then overtake
replies to earlier requests. It still counts against the client's `max_queue` (bridge.daemon.scheduler).

Every field value has passed bridge.daemon.values before a handler runs (numbers finite and at most
64-bit integers, nesting and size bounded); the getters below add the type and range checks.
"""
from __future__ import annotations

import re
import threading
import time
import types
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from ..core.errors import BadRequest, BridgeError, CodecError, TooLarge, UnknownModel
from ..core.notes import Note
from . import values
from .protocol import PREFIX, REPLY_ADDRESSES
from .values import is_int, is_number   # noqa: F401  (re-exported: op modules import them from here)


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; over a limit the answer is `too_large` (queue: `busy`)."""
    max_request_bytes: int = 60000   # one request datagram
    max_notes: int = 4096            # note rows in one request, all note lists together
    max_n: int = 32                  # sequences from sample / variations / decode
    max_steps: int = 64              # interpolate steps
    max_palette: int = 8             # palette rows and columns
    max_queue: int = 64              # requests queued or running per client
    max_temperature: float = 10.0
    max_amount: float = 100.0        # |amount| of an attribute move
    max_spread: float = 10.0
    max_streams: int = 4             # live streams (morphs, knob decodes) per client
    max_streams_total: int = 64      # live streams of all clients together
    stream_lease_bars: int = 8       # a live stream without transport / requests for this many bars ends

    def to_dict(self) -> dict:
        """The limits as a JSON object (the `hello` reply)."""
        return asdict(self)

    def check(self) -> "Limits":
        """Raise ValueError naming the first limit outside `LIMIT_RANGES`; else return self."""
        for name, (lo, hi) in LIMIT_RANGES.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise ValueError(f"limit {name} must be in {lo:g}..{hi:g}, got {v!r}")
        return self


# the values a limit may be set to (--limit NAME=VALUE): positive, and small enough that the daemon
# stays responsive and a reply still fits its datagrams
LIMIT_RANGES: dict[str, tuple[float, float]] = {
    "max_request_bytes": (64, 65507),
    "max_notes": (1, 100_000),
    "max_n": (1, 1024),
    "max_steps": (2, 1024),
    "max_palette": (2, 32),
    "max_queue": (1, 10_000),
    "max_temperature": (0.001, 1000.0),
    "max_amount": (0.001, 1e6),
    "max_spread": (0.001, 1e6),
    "max_streams": (1, 1024),
    "max_streams_total": (1, 100_000),
    "stream_lease_bars": (1, 1024),
}


class Sequences:
    """A handler's result streamed as /bridge/seq messages then /bridge/done.

    `seqs`: a list of note lists (bridge.Note) or of note rows; `extras`: optional per-sequence
    dicts merged into each message's JSON (e.g. {"row": 0, "col": 1})."""

    def __init__(self, model, seqs: list, extras: list[dict] | None = None):
        """Raises:
            ValueError: `extras` does not have one dict per sequence.
        """
        self.model = model
        self.rows = [notes_to_rows(s) for s in seqs]
        self.extras = extras
        if extras is not None and len(extras) != len(seqs):
            raise ValueError("one extras dict per sequence")


# ---- the registry ------------------------------------------------------------------------------

@dataclass(frozen=True)
class OpSpec:
    """One registered op: its name, handler, whether it queues behind the client's earlier
    requests (`serial`), and the module that defined it."""
    name: str
    handler: Callable
    serial: bool = True
    module: str = ""


MARK = "__bridge_op__"          # set on a function by `op`: (name, serial)
SHUTDOWN_MARK = "__bridge_on_shutdown__"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED = frozenset(a[len(PREFIX):] for a in REPLY_ADDRESSES)   # reply addresses, never requests


def op(name: str, *, serial: bool = True):
    """Mark a function as the handler of op `name`, for `OpRegistry.include`. Registers nothing.

    Args:
        name: the op name: lowercase letters, digits and "_", not a reply address (ok, seq, ...).
        serial: False to run it as soon as a worker is free (see the module docstring).

    Raises:
        ValueError: a bad op name.
    """
    check_name(name)

    def mark(fn):
        setattr(fn, MARK, (name, serial))
        return fn
    return mark


def on_shutdown(fn: Callable[[], None]) -> Callable[[], None]:
    """Mark fn() to run when the daemon stops (after the last request, before sessions close), for
    `OpRegistry.include`."""
    setattr(fn, SHUTDOWN_MARK, True)
    return fn


def check_name(name: str) -> None:
    """Raise ValueError unless `name` can be an op name."""
    if not isinstance(name, str) or not _NAME.match(name) or name in RESERVED:
        raise ValueError(f"bad op name {name!r}")


class OpRegistry:
    """The ops one daemon serves (name -> OpSpec) and the hooks it runs at shutdown.

    Build it, include op modules, pass it to bridge.daemon.server.BridgeServer:

        ops = OpRegistry().include(bridge.daemon.ops, my_ops_module)
        server = BridgeServer(models, ops)

    Thread-safe; the server only reads it once running.
    """

    def __init__(self):
        """An empty registry: no ops, no shutdown hooks."""
        self._ops: dict[str, OpSpec] = {}
        self._shutdown: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def add(self, name: str, handler: Callable, *, serial: bool = True, replace: bool = False) -> OpSpec:
        """Register `handler(session, request)` as op `name`.

        Args:
            name: the op name (see `op`).
            handler: the function (or bound method).
            serial: see the module docstring.
            replace: allow replacing another handler of the same name.

        Returns:
            The OpSpec.

        Raises:
            ValueError: a bad name, or a name another handler holds (unless `replace`).
        """
        check_name(name)
        spec = OpSpec(name, handler, serial, getattr(handler, "__module__", "") or "")
        with self._lock:
            old = self._ops.get(name)
            if old is not None and not replace and old.handler != handler:
                raise ValueError(f"op {name!r} is already registered by {old.module}")
            self._ops[name] = spec
        return spec

    def include(self, *sources) -> "OpRegistry":
        """Add the `op`-marked handlers and `on_shutdown`-marked hooks of each source.

        Args:
            *sources: modules (their own functions, not the ones they import) or objects (their
                marked methods, bound).

        Returns:
            self, so calls chain.

        Raises:
            ValueError: as `add` (two handlers for one name).
        """
        for source in sources:
            module = source.__name__ if isinstance(source, types.ModuleType) else None
            for attr in sorted(dir(source)):
                fn = getattr(source, attr, None)
                if not callable(fn) or (module is not None and getattr(fn, "__module__", None) != module):
                    continue
                mark = getattr(fn, MARK, None)
                if mark is not None:
                    self.add(mark[0], fn, serial=mark[1])
                if getattr(fn, SHUTDOWN_MARK, False):
                    self.on_shutdown(fn)
        return self

    def get(self, name: str) -> OpSpec | None:
        """The op named `name`, or None."""
        return self._ops.get(name)

    def names(self) -> list[str]:
        """Every op name, sorted."""
        return sorted(self._ops)

    def __contains__(self, name: str) -> bool:
        return name in self._ops

    def __len__(self) -> int:
        return len(self._ops)

    def on_shutdown(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Run fn() when the daemon stops (after the last request, before sessions close)."""
        with self._lock:
            if fn not in self._shutdown:
                self._shutdown.append(fn)
        return fn

    def shutdown_hooks(self) -> list[Callable[[], None]]:
        """The shutdown hooks, in the order they were added."""
        return list(self._shutdown)


# ---- requests and field validation --------------------------------------------------------------

_REQUIRED = object()


class Request:
    """One decoded request: `op`, `id`, `fields` (the JSON object), `source` (host, port), and the
    `server` it came to (its `models`, `limits`, `ops`).

    The typed getters return a field's value (or `default` when it is absent or null) and raise
    BadRequest with a message naming the field when it has the wrong type or range; a field over a
    size limit raises TooLarge. A getter without a default makes the field required."""

    def __init__(self, server, op: str, request_id: int, fields: dict, source: tuple):
        """Args:
            server: the BridgeServer (models, limits, ops, reply ports, statistics).
            op: the op name. request_id: the int32 id replies carry.
            fields: the request's JSON object. source: the (host, port) it came from.
        """
        self.server = server
        self.op = op
        self.id = request_id
        self.fields = fields
        self.source = source
        self.received = time.monotonic()
        self._notes_seen = 0

    @property
    def limits(self) -> Limits:
        """The daemon's Limits."""
        return self.server.limits

    def has(self, key: str) -> bool:
        """Whether the field is present and not null."""
        return self.fields.get(key) is not None

    def _get(self, key: str, default):
        v = self.fields.get(key)
        if v is None:
            if default is _REQUIRED:
                raise BadRequest(f"'{key}' is required")
            return default, True
        return v, False

    def integer(self, key: str, default=_REQUIRED, lo: int | None = None, hi: int | None = None,
                over: type[BridgeError] = BadRequest) -> int:
        """An integer field (a float holding an integer is accepted).

        Args:
            key: the field.
            default: returned when the field is absent; none = required.
            lo, hi: the allowed range, both ends included.
            over: the error above `hi` (TooLarge for sizes).

        Raises:
            BadRequest: missing, not an integer, below `lo`. `over`: above `hi`.
        """
        v, dflt = self._get(key, default)
        if dflt:
            return v
        return values.integer(key, v, lo, hi, over)

    def number(self, key: str, default=_REQUIRED, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False) -> float:
        """A finite number field in lo..hi (`lo_open`: lo itself excluded).

        Raises:
            BadRequest: missing (without a default), not a finite number, out of range.
        """
        v, dflt = self._get(key, default)
        if dflt:
            return v
        return values.number(key, v, lo, hi, lo_open=lo_open)

    def string(self, key: str, default=_REQUIRED, choices: tuple | None = None) -> str:
        """A string field, one of `choices` when given.

        Raises:
            BadRequest: missing (without a default), not a string, not one of `choices`.
        """
        v, dflt = self._get(key, default)
        if dflt:
            return v
        return values.string(key, v, choices)

    def boolean(self, key: str, default=_REQUIRED) -> bool:
        """A true/false (or 1/0) field.

        Raises:
            BadRequest: missing (without a default), anything else.
        """
        v, dflt = self._get(key, default)
        return v if dflt else values.boolean(key, v)

    def int_pair(self, key: str, default=_REQUIRED, lo: int = 1, hi: int = 64):
        """A [a, b] field of two integers in lo..hi (a time signature).

        Raises:
            BadRequest: missing (without a default), not two integers in range.
        """
        v, dflt = self._get(key, default)
        return v if dflt else values.int_pair(key, v, lo, hi)

    def temperature(self, default: float) -> float:
        """The `temperature` field: 0..limits.max_temperature."""
        return self.number("temperature", default, 0.0, self.limits.max_temperature)

    def seed(self) -> int | None:
        """The `seed` field: None or 0..2**63-1."""
        return self.integer("seed", None, 0, 2 ** 63 - 1)

    def model(self, key: str = "model"):
        """The loaded model a field names.

        Raises:
            BadRequest: the field is missing or not a string. UnknownModel: no such model is loaded.
        """
        name = self.string(key)
        m = self.server.models.get(name)
        if m is None:
            known = ", ".join(sorted(self.server.models)) or "none"
            raise UnknownModel(f"no model {name!r} is loaded (loaded: {known})")
        return m

    def notes(self, model, key: str = "notes", value=_REQUIRED) -> list[Note]:
        """A note list field: rows [pitch, start_beat, duration_beats, velocity?, track?].

        Args:
            model: the model the notes are for (its tracks; the drum track's notes get is_drum).
            key: the field (also used in messages).
            value: the rows themselves, when they are not a top-level field (palette corners).

        Returns:
            bridge.Note list.

        Raises:
            BadRequest: missing, not a list, a bad row, a track the model does not have.
            TooLarge: more than limits.max_notes rows in this request so far.
        """
        rows = self.fields.get(key) if value is _REQUIRED else value
        if rows is None:
            raise BadRequest(f"'{key}' is required")
        if not isinstance(rows, list):
            raise BadRequest(f"'{key}' must be a list of note rows [pitch, start_beat, duration_beats, velocity, track]")
        self._notes_seen += len(rows)
        if self._notes_seen > self.limits.max_notes:
            raise TooLarge(f"more than {self.limits.max_notes} note rows in one request")
        ntracks, drum_track = track_layout(model)
        out = []
        for i, row in enumerate(rows):
            try:
                note = Note.from_row(row)
            except ValueError as e:
                raise BadRequest(f"'{key}'[{i}]: {e}") from None
            if not 0 <= note.track < ntracks:
                raise BadRequest(f"'{key}'[{i}]: track {note.track} out of range: model {model.name!r} has "
                                 f"{ntracks} track{'s' if ntracks > 1 else ''} (0..{ntracks - 1})")
            if note.track == drum_track:
                note = Note(note.pitch, note.start, note.end, note.velocity, note.track, True)
            out.append(note)
        return out

    def z(self, model, key: str = "z", batch: bool = False) -> np.ndarray:
        """A latent vector field: z_size finite numbers, or (batch=True) a list of such lists.

        Returns:
            float32 (z,), or (N, z) when `batch`.

        Raises:
            BadRequest: missing, wrong sizes, not finite float32. TooLarge: over limits.max_n vectors.
        """
        v, _ = self._get(key, _REQUIRED)
        if not isinstance(v, list) or not v:
            raise BadRequest(f"'{key}' must be a list of {model.z_size} numbers")
        vecs = v if (batch and isinstance(v[0], list)) else [v]
        if len(vecs) > self.limits.max_n:
            raise TooLarge(f"'{key}' has {len(vecs)} vectors, the limit is {self.limits.max_n}")
        for vec in vecs:
            if not isinstance(vec, list) or len(vec) != model.z_size or not all(is_number(x) for x in vec):
                raise BadRequest(f"'{key}' must hold latent vectors of {model.z_size} finite numbers "
                                 f"(model {model.name!r})")
        arr = np.asarray([[float(x) for x in vec] for vec in vecs], dtype=np.float32)
        if not np.isfinite(arr).all():
            raise BadRequest(f"'{key}' overflows float32")
        return arr if batch else arr[0]


# ---- model helpers ------------------------------------------------------------------------------

def track_layout(model) -> tuple[int, int | None]:
    """(number of tracks, index of the drum track or None)."""
    tracks = model.info["tracks"]
    drum = next((i for i, t in enumerate(tracks) if t.get("codec") == "drums"), None)
    return len(tracks), drum


def model_bars(model) -> int:
    """The model's length in bars (the `bars` of its /bridge/seq replies)."""
    return int(model.info["bars"])


def notes_to_rows(notes) -> list[list]:
    """bridge.Note objects (or rows already) -> the wire's note rows."""
    return [n.to_row() if isinstance(n, Note) else list(n) for n in notes]


def encode_notes(model, note_lists: list) -> np.ndarray:
    """model.encode for a request: (B, z) float32.

    Raises:
        BadRequest: notes the model's codec cannot represent (the message names the model).
    """
    try:
        return np.asarray(model.encode(note_lists), dtype=np.float32)
    except CodecError as e:
        raise BadRequest(f"the notes do not fit model {model.name!r}: {e}") from None


def z_to_list(z) -> list[float]:
    """float32 values as the shortest decimals that read back to the same float32 (non-finite: 0).
    numpy's float32 -> str conversion of the whole array is that shortest form, in one call."""
    a = np.asarray(z, dtype=np.float32).reshape(-1)
    return list(map(float, np.where(np.isfinite(a), a, np.float32(0)).astype(str)))
