"""One OSC client of the daemon: where its replies go, its request queue, its musical state.

A session is keyed by the source address (host, port) its requests come from. Ops get the session
as their first argument and talk back through it:

    session.send("/bridge/seq", request_id, index, count, json_text)   # any OSC message, thread-safe
    session.ok(request_id, {"z": [...]})
    session.error(request_id, "bad_request", "why")
    session.sequences(request_id, model, seqs)                         # /bridge/seq ... + /bridge/done

`send` may be called from any thread at any time (a live op streaming ahead of the bar clock does),
also after the request that started the stream has been answered. Messages from one `send` call are
one UDP datagram; calls are serialised per session so concurrent senders never interleave bytes.

Per-op state lives in `session.latent` (model name -> the last latent vector this client worked
with) and `session.state` (a free dict for op modules; namespace your keys, e.g. "live.morph").
`session.on_close(fn)` registers cleanup run when the session is evicted or the daemon stops.
"""
from __future__ import annotations

import json
import logging
import struct
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable


if TYPE_CHECKING:  # pragma: no cover
    from .server import BridgeServer

log = logging.getLogger("bridge.session")

OK, SEQ, DONE, ERROR = "/bridge/ok", "/bridge/seq", "/bridge/done", "/bridge/error"
REPLY_ADDRESSES = frozenset({OK, SEQ, DONE, ERROR})

# A reply datagram never exceeds this many bytes (IPv4 UDP carries at most 65507); sequences that
# would are split into parts (see Session.sequences).
MAX_REPLY_BYTES = 60000

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
    datagram it builds again (a third of the cost of a 60 kB /bridge/seq)."""
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


def _row_bytes(row: list) -> int:
    return len(dumps(row)) + 1


class Session:
    def __init__(self, server: "BridgeServer", key: tuple):
        self.server = server
        self.key = key                       # (host, port) the requests come from
        self.host = key[0]
        self.reply_port: int | None = None   # set by hello for this exact source
        self.created = time.monotonic()
        self.last_seen = self.created
        self.latent: dict[str, Any] = {}     # model name -> np.ndarray (z,)
        self.state: dict[str, Any] = {}      # free per-op state, namespaced keys
        self.requests = 0
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._pending: deque = deque()
        self._running = False     # a run_next is scheduled or running
        self._executing = False   # an item has been taken off the queue and is running
        self._closed = False
        self._close_callbacks: list[Callable[["Session"], None]] = []

    # ---- where replies go -------------------------------------------------------------------
    @property
    def reply_address(self) -> tuple:
        return self.server.reply_address(self)

    @property
    def label(self) -> str:
        return f"{self.key[0]}:{self.key[1]}"

    # ---- sending ------------------------------------------------------------------------------
    def send(self, address: str, *args) -> bool:
        """Send one OSC message to this client's reply address. Thread-safe; never raises on network
        errors (UDP is lossy anyway): returns False if the datagram could not be sent."""
        data = build_message(address, args)
        if len(data) > 65507:
            raise ValueError(f"OSC message of {len(data)} bytes does not fit one UDP datagram")
        with self._send_lock:
            return self.server.send_datagram(data, self.reply_address)

    def ok(self, request_id: int, obj: dict | None = None) -> None:
        text = dumps(obj if obj is not None else {})
        if len(text) + 64 > MAX_REPLY_BYTES:
            self.error(request_id, "too_large", f"the reply would be {len(text)} bytes, over the "
                                                f"{MAX_REPLY_BYTES}-byte datagram limit")
            return
        self.send(OK, request_id, text)

    def done(self, request_id: int) -> None:
        self.send(DONE, request_id)

    def error(self, request_id: int, code: str, message: str) -> None:
        self.server.stats.count_error(code)
        self.send(ERROR, request_id, code, str(message)[:2000])

    def sequence_messages(self, request_id: int, model_name: str, bars: int, seqs: list,
                          extras: list[dict] | None = None) -> list[tuple]:
        """The /bridge/seq messages (argument tuples) for a list of sequences (lists of note rows).

        One message per sequence; a sequence whose JSON would not fit one datagram is split into
        parts: every part repeats the header fields with "part" (0-based) and "parts", and the
        client concatenates the "notes" of the parts."""
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
                rb = _row_bytes(row)
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

    def sequences(self, request_id: int, model_name: str, bars: int, seqs: list,
                  extras: list[dict] | None = None, done: bool = True) -> None:
        """Stream sequences (each a list of note rows) as /bridge/seq messages, then /bridge/done."""
        for args in self.sequence_messages(request_id, model_name, bars, seqs, extras):
            self.send(SEQ, *args)
        if done:
            self.done(request_id)

    # ---- lifecycle ----------------------------------------------------------------------------
    def on_close(self, fn: Callable[["Session"], None]) -> None:
        """Run fn(session) when the session is evicted or the daemon shuts down."""
        self._close_callbacks.append(fn)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._pending.clear()
        for fn in self._close_callbacks:
            try:
                fn(self)
            except Exception:  # a cleanup failure must not stop the others
                log.exception("session close callback failed client=%s", self.label)

    @property
    def idle(self) -> bool:
        with self._lock:
            return not self._running and not self._pending

    @property
    def queued(self) -> int:
        """Requests waiting or running."""
        with self._lock:
            return len(self._pending) + (1 if self._executing else 0)

    # ---- the per-client serial queue (driven by the server) -----------------------------------
    def enqueue(self, item, limit: int) -> bool | None:
        """Add a work item. True: the caller must schedule `run_next`; False: a run is already
        scheduled; None: the queue is full (the request is refused with `busy`)."""
        with self._lock:
            if self._closed:
                return False
            self.last_seen = time.monotonic()
            if len(self._pending) + (1 if self._executing else 0) >= limit:
                return None
            self._pending.append(item)
            if self._running:
                return False
            self._running = True
            return True

    def take_pending(self) -> list:
        """Remove and return the queued (not yet running) items."""
        with self._lock:
            items = list(self._pending)
            self._pending.clear()
            return items

    def run_next(self, execute: Callable[["Session", Any], None]) -> bool:
        """Run one queued item (on a worker thread). Returns True if more are waiting: the server
        then schedules another `run_next` behind other clients' work (round-robin fairness)."""
        with self._lock:
            if not self._pending:
                self._running = False
                return False
            item = self._pending.popleft()
            self._executing = True
        try:
            execute(self, item)
        finally:
            with self._lock:
                self._executing = False
                more = bool(self._pending)
                if not more:
                    self._running = False
        return more
