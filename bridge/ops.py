"""The OSC op registry and the core ops of protocol 1.0 (docs/osc-protocol.md).

An op is a function `handler(session, request)` registered under a name; the daemon routes
`/bridge/<name>` to it. Any module can add ops without touching the server:

    from bridge import ops

    @ops.op("knob")
    def knob(session, request):
        model = request.model()                      # the "model" field -> a loaded model, or unknown_model
        value = request.number("value", lo=-1, hi=1) # validated fields, bad_request on a wrong type
        ...
        return {"value": value}                      # a dict -> /bridge/ok id json

The daemon imports `bridge.ops` and then every module in `server.OP_MODULES` that exists
(`bridge.live` among them) plus any `--ops-module`, so importing registers the ops.

What a handler may do:
- return a dict: sent as `/bridge/ok id json`;
- return `Sequences(model, seqs)`: streamed as `/bridge/seq` messages then `/bridge/done id`;
- return None after replying itself through `session` (session.ok / session.sequences / session.send);
  a streaming op may keep pushing with `session.send(...)` from its own thread later;
- raise `OpError(code, message)`: sent as `/bridge/error id code message`; any other exception is
  logged with its traceback and answered with `internal`.

`serial=False` runs an op as soon as a worker is free instead of behind the client's earlier
requests (for ops such as `stop` that must not wait for a long palette); its reply may then overtake
replies to earlier requests.
"""
from __future__ import annotations

import logging
import math
import re
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from . import latent
from .codecs import CodecError
from .notes import Note

log = logging.getLogger("bridge.ops")

PROTOCOL_VERSION = "1.0"
ERROR_CODES = ("bad_request", "unknown_model", "unknown_op", "too_large", "busy", "internal")


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

    def to_dict(self) -> dict:
        return asdict(self)


class OpError(Exception):
    """An error reply: /bridge/error id code message."""

    def __init__(self, code: str, message: str):
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message


def bad(message: str) -> OpError:
    return OpError("bad_request", message)


class Sequences:
    """A handler's result streamed as /bridge/seq messages then /bridge/done.

    `seqs`: a list of note lists (bridge.Note) or of note rows; `extras`: optional per-sequence
    dicts merged into each message's JSON (e.g. {"row": 0, "col": 1})."""

    def __init__(self, model, seqs: list, extras: list[dict] | None = None):
        self.model = model
        self.rows = [notes_to_rows(s) for s in seqs]
        self.extras = extras
        if extras is not None and len(extras) != len(seqs):
            raise ValueError("one extras dict per sequence")


# ---- the registry ------------------------------------------------------------------------------

@dataclass(frozen=True)
class OpSpec:
    name: str
    handler: Callable
    serial: bool = True
    module: str = ""


_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_RESERVED = {"ok", "seq", "done", "error"}   # reply addresses, never requests
_registry: dict[str, OpSpec] = {}
_shutdown_hooks: list[Callable[[], None]] = []
_reg_lock = threading.Lock()


def register(name: str, handler: Callable, *, serial: bool = True, replace: bool = False) -> OpSpec:
    if not _NAME.match(name) or name in _RESERVED:
        raise ValueError(f"bad op name {name!r}")
    spec = OpSpec(name, handler, serial, getattr(handler, "__module__", ""))
    with _reg_lock:
        old = _registry.get(name)
        if old is not None and not replace and old.handler is not handler:
            raise ValueError(f"op {name!r} is already registered by {old.module}")
        _registry[name] = spec
    return spec


def op(name: str, *, serial: bool = True, replace: bool = False):
    """Decorator: @op("name") def handler(session, request): ..."""
    def deco(fn):
        register(name, fn, serial=serial, replace=replace)
        return fn
    return deco


def get(name: str) -> OpSpec | None:
    return _registry.get(name)


def names() -> list[str]:
    return sorted(_registry)


def on_shutdown(fn: Callable[[], None]) -> Callable[[], None]:
    """Run fn() when the daemon stops (after the last request, before sessions close)."""
    _shutdown_hooks.append(fn)
    return fn


def shutdown_hooks() -> list[Callable[[], None]]:
    return list(_shutdown_hooks)


# ---- requests and field validation --------------------------------------------------------------

_REQUIRED = object()


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class Request:
    """One decoded request: `op`, `id`, `fields` (the JSON object), `source` (host, port).

    The typed getters raise OpError(bad_request) with a message naming the field."""

    def __init__(self, server, op: str, request_id: int, fields: dict, source: tuple):
        self.server = server
        self.op = op
        self.id = request_id
        self.fields = fields
        self.source = source
        self.received = time.monotonic()
        self._notes_seen = 0

    @property
    def limits(self) -> Limits:
        return self.server.limits

    def has(self, key: str) -> bool:
        return self.fields.get(key) is not None

    def _get(self, key: str, default):
        v = self.fields.get(key)
        if v is None:
            if default is _REQUIRED:
                raise bad(f"'{key}' is required")
            return default, True
        return v, False

    def integer(self, key: str, default=_REQUIRED, lo: int | None = None, hi: int | None = None,
                over: str = "bad_request") -> int:
        v, dflt = self._get(key, default)
        if dflt:
            return v
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if not _is_int(v):
            raise bad(f"'{key}' must be an integer, got {v!r}")
        if lo is not None and v < lo:
            raise bad(f"'{key}' must be >= {lo}, got {v}")
        if hi is not None and v > hi:
            raise OpError(over, f"'{key}' must be <= {hi}, got {v}")
        return v

    def number(self, key: str, default=_REQUIRED, lo: float | None = None, hi: float | None = None) -> float:
        v, dflt = self._get(key, default)
        if dflt:
            return v
        if not _is_num(v):
            raise bad(f"'{key}' must be a finite number, got {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise bad(f"'{key}' must be in {lo}..{hi}, got {v}")
        return float(v)

    def string(self, key: str, default=_REQUIRED, choices: tuple | None = None) -> str:
        v, dflt = self._get(key, default)
        if dflt:
            return v
        if not isinstance(v, str):
            raise bad(f"'{key}' must be a string, got {v!r}")
        if choices is not None and v not in choices:
            raise bad(f"'{key}' must be one of {', '.join(choices)}, got {v!r}")
        return v

    def temperature(self, default: float) -> float:
        return self.number("temperature", default, 0.0, self.limits.max_temperature)

    def seed(self) -> int | None:
        return self.integer("seed", None, 0, 2 ** 63 - 1)

    def model(self, key: str = "model"):
        name = self.string(key)
        m = self.server.models.get(name)
        if m is None:
            known = ", ".join(sorted(self.server.models)) or "none"
            raise OpError("unknown_model", f"no model {name!r} is loaded (loaded: {known})")
        return m

    def notes(self, model, key: str = "notes", value=_REQUIRED) -> list[Note]:
        """A note list field: rows [pitch, start_beat, duration_beats, velocity?, track?]."""
        rows = self.fields.get(key) if value is _REQUIRED else value
        if rows is None:
            raise bad(f"'{key}' is required")
        if not isinstance(rows, list):
            raise bad(f"'{key}' must be a list of note rows [pitch, start_beat, duration_beats, velocity, track]")
        self._notes_seen += len(rows)
        if self._notes_seen > self.limits.max_notes:
            raise OpError("too_large", f"more than {self.limits.max_notes} note rows in one request")
        ntracks, drum_track = track_layout(model)
        out = []
        for i, row in enumerate(rows):
            try:
                note = Note.from_row(row)
            except ValueError as e:
                raise bad(f"'{key}'[{i}]: {e}") from None
            if not 0 <= note.track < ntracks:
                raise bad(f"'{key}'[{i}]: track {note.track} out of range: model {model.name!r} has "
                          f"{ntracks} track{'s' if ntracks > 1 else ''} (0..{ntracks - 1})")
            if note.track == drum_track:
                note = Note(note.pitch, note.start, note.end, note.velocity, note.track, True)
            out.append(note)
        return out

    def z(self, model, key: str = "z", batch: bool = False) -> np.ndarray:
        """A latent vector field: z_size finite numbers, or (batch=True) a list of such lists."""
        v, _ = self._get(key, _REQUIRED)
        if not isinstance(v, list) or not v:
            raise bad(f"'{key}' must be a list of {model.z_size} numbers")
        vecs = v if (batch and isinstance(v[0], list)) else [v]
        if len(vecs) > self.limits.max_n:
            raise OpError("too_large", f"'{key}' has {len(vecs)} vectors, the limit is {self.limits.max_n}")
        for vec in vecs:
            if not isinstance(vec, list) or len(vec) != model.z_size or not all(_is_num(x) for x in vec):
                raise bad(f"'{key}' must hold latent vectors of {model.z_size} finite numbers "
                          f"(model {model.name!r})")
        arr = np.asarray(vecs, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise bad(f"'{key}' overflows float32")
        return arr if batch else arr[0]


# ---- model helpers ------------------------------------------------------------------------------

def track_layout(model) -> tuple[int, int | None]:
    """(number of tracks, index of the drum track or None)."""
    tracks = model.info["tracks"]
    drum = next((i for i, t in enumerate(tracks) if t.get("codec") == "drums"), None)
    return len(tracks), drum


def model_bars(model) -> int:
    return int(model.info["bars"])


def notes_to_rows(notes) -> list[list]:
    rows = []
    for n in notes:
        rows.append(n.to_row() if isinstance(n, Note) else list(n))
    return rows


def attribute_names(model) -> list[str]:
    names = list((model.info.get("attributes") or {}).keys())
    for d in model.info.get("directions") or []:
        if isinstance(d, dict) and d.get("name") and d["name"] not in names:
            names.append(d["name"])
    return names


def model_summary(model) -> dict:
    info = model.info
    return {
        "name": model.name,
        "kind": info.get("kind"),
        "bars": info.get("bars"),
        "steps_per_bar": info.get("steps_per_bar"),
        "num_steps": model.num_steps,
        "z_size": model.z_size,
        "hierarchical": info.get("hierarchical"),
        "tracks": [{k: t[k] for k in ("name", "codec", "min_pitch", "max_pitch", "program") if k in t}
                   for t in info.get("tracks", [])],
        "attributes": attribute_names(model),
    }


def _encode(model, note_lists: list) -> np.ndarray:
    try:
        return np.asarray(model.encode(note_lists), dtype=np.float32)
    except CodecError as e:
        raise bad(f"the notes do not fit model {model.name!r}: {e}") from None


def _decode(model, z: np.ndarray, temperature: float, seed: int | None) -> list:
    return model.decode(np.asarray(z, dtype=np.float32), temperature=temperature, seed=seed)


def _remember(session, model, z) -> None:
    session.latent[model.name] = np.array(z, dtype=np.float32).reshape(-1)


def z_to_list(z) -> list[float]:
    """float32 values as the shortest decimals that read back to the same float32."""
    return [float(str(v)) if math.isfinite(v) else 0.0
            for v in (np.float32(x) for x in np.asarray(z, dtype=np.float32).reshape(-1))]


# ---- core ops ------------------------------------------------------------------------------------

@op("ping")
def op_ping(session, request):
    out = {"pong": True, "time": time.time()}
    if "echo" in request.fields:
        out["echo"] = request.fields["echo"]
    return out


@op("hello")
def op_hello(session, request):
    port = request.integer("reply_port", None, 1, 65535)
    scope = request.string("scope", "host", ("host", "source"))
    request.server.register_reply_port(session, port, scope)
    host, rport = session.reply_address[:2]
    from . import __version__
    return {
        "protocol": PROTOCOL_VERSION,
        "server": "latent-bridge",
        "version": __version__,
        "reply_to": f"{host}:{rport}",
        "models": sorted(request.server.models),
        "ops": names(),
        "limits": request.limits.to_dict(),
    }


@op("models")
def op_models(session, request):
    server = request.server
    return {"models": [model_summary(server.models[n]) for n in sorted(server.models)],
            "failed": list(server.failed_models)}


@op("stats")
def op_stats(session, request):
    return request.server.stats_snapshot()


@op("sample")
def op_sample(session, request):
    model = request.model()
    n = request.integer("n", 1, 1, request.limits.max_n, over="too_large")
    temperature = request.temperature(0.5)
    seed = request.seed()
    return Sequences(model, model.sample(n, temperature=temperature, seed=seed))


@op("encode")
def op_encode(session, request):
    model = request.model()
    notes = request.notes(model)
    z = _encode(model, [notes])[0]
    _remember(session, model, z)
    return {"model": model.name, "z": z_to_list(z)}


@op("decode")
def op_decode(session, request):
    model = request.model()
    z = request.z(model, batch=True)
    temperature = request.temperature(0.0)
    seed = request.seed()
    _remember(session, model, z[-1])
    return Sequences(model, _decode(model, z, temperature, seed))


@op("reconstruct")
def op_reconstruct(session, request):
    model = request.model()
    notes = request.notes(model)
    temperature = request.temperature(0.0)
    seed = request.seed()
    z = _encode(model, [notes])
    _remember(session, model, z[0])
    return Sequences(model, _decode(model, z, temperature, seed))


@op("interpolate")
def op_interpolate(session, request):
    model = request.model()
    a = request.notes(model, "a")
    b = request.notes(model, "b")
    steps = request.integer("steps", 8, 2, request.limits.max_steps, over="too_large")
    temperature = request.temperature(0.0)
    seed = request.seed()
    method = request.string("method", "slerp", ("slerp", "lerp"))
    za, zb = _encode(model, [a, b])
    path = latent.interpolate(za, zb, steps, method)
    seqs = _decode(model, path, temperature, seed)
    extras = [{"t": round(float(t), 6)} for t in np.linspace(0.0, 1.0, steps)]
    return Sequences(model, seqs, extras)


@op("attribute")
def op_attribute(session, request):
    model = request.model()
    if request.has("z"):
        z = request.z(model)
    elif request.has("notes"):
        z = _encode(model, [request.notes(model)])[0]
    else:
        raise bad("give 'notes' or 'z'")
    name = request.string("attribute")
    known = attribute_names(model)
    if name not in known:
        raise bad(f"model {model.name!r} has no attribute {name!r} (it has: {', '.join(known) or 'none'})")
    amount = request.number("amount", 1.0, -request.limits.max_amount, request.limits.max_amount)
    temperature = request.temperature(0.0)
    seed = request.seed()
    z2 = np.asarray(model.attribute(z, name, amount), dtype=np.float32).reshape(1, -1)
    _remember(session, model, z2[0])
    return Sequences(model, _decode(model, z2, temperature, seed), [{"attribute": name, "amount": amount}])


@op("palette")
def op_palette(session, request):
    model = request.model()
    corners = request.fields.get("corners")
    if not isinstance(corners, list) or len(corners) != 4:
        raise bad("'corners' must be a list of 4 note lists: top-left, top-right, bottom-left, bottom-right")
    lists = [request.notes(model, f"corners[{i}]", c) for i, c in enumerate(corners)]
    size = request.fields.get("size", 4)
    if _is_int(size):
        rows = cols = size
    elif isinstance(size, list) and len(size) == 2 and all(_is_int(s) for s in size):
        rows, cols = size
    else:
        raise bad(f"'size' must be an integer or [rows, cols], got {size!r}")
    if rows < 2 or cols < 2:
        raise bad(f"a palette is at least 2x2, got {rows}x{cols}")
    if rows > request.limits.max_palette or cols > request.limits.max_palette:
        raise OpError("too_large", f"a palette is at most {request.limits.max_palette} per side, got {rows}x{cols}")
    temperature = request.temperature(0.0)
    seed = request.seed()
    zs = _encode(model, lists)
    grid = latent.palette(zs, (rows, cols))
    seqs = _decode(model, grid, temperature, seed)
    extras = [{"row": i // cols, "col": i % cols} for i in range(rows * cols)]
    return Sequences(model, seqs, extras)


@op("variations")
def op_variations(session, request):
    model = request.model()
    notes = request.notes(model)
    n = request.integer("n", 4, 1, request.limits.max_n, over="too_large")
    spread = request.number("spread", 0.5, 0.0, request.limits.max_spread)
    seed = request.seed()
    temperature = request.temperature(0.0)
    z = _encode(model, [notes])[0]
    _remember(session, model, z)
    zs = latent.variations(z, n, spread, rng=seed)
    # the decode seed is derived from the request seed so one seed reproduces the whole answer
    dseed = None if seed is None else (seed + 1) % (2 ** 63)
    return Sequences(model, _decode(model, zs, temperature, dseed))
