"""One OSC client of the daemon: where its replies go, its request queue, its musical state.

`ClientSession` is the interface an op talks to (its first argument). `Session` implements it for an
OSC client, keyed by the source address (host, port) its requests come from; the live side's
HardwareClient (bridge.live.ops) implements it for hardware knobs. Ops talk back through it:

    session.send("/bridge/seq", request_id, index, count, json_text)   # any OSC message, thread-safe
    session.ok(request_id, {"z": [...]})
    session.fail(request_id, exc)                                      # the error reply for exc
    session.sequences(request_id, model, bars, seqs)                   # /bridge/seq ... + /bridge/done

`send` may be called from any thread at any time (a live op streaming ahead of the bar clock does),
also after the request that started the stream has been answered. Messages from one `send` call are
one UDP datagram; calls are serialised per session so concurrent senders never interleave bytes.

Per-op state lives in `session.latent` (model name -> the last latent vector this client worked
with) and `session.state` (a free dict for op modules; namespace your keys, e.g. "live.morph").
`session.on_close(fn)` registers cleanup run when the session is evicted or the daemon stops.
"""
from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from typing import Any, Callable, Protocol

from ..core.errors import TooLarge
from .protocol import (DONE, ERROR, MAX_DATAGRAM, MAX_ERROR_MESSAGE, MAX_REPLY_BYTES, OK, SEQ, build_message,
                       dumps, error_reply, sequence_messages)

log = logging.getLogger("bridge.session")


class ClientSession(ABC):
    """What an op handler gets as its first argument: one client of the daemon.

    Implemented by `Session` (an OSC client, keyed by its source address) and by
    bridge.live.ops.HardwareClient (hardware knobs moving a latent no OSC client owns). Ops reply
    and keep per-client state only through this interface.

    Attributes:
        label: a short name for logs ("host:port", "midi").
        latent: model name -> the last latent vector (np.ndarray (z,)) this client worked with.
        state: free per-op state; namespace the keys ("live.client").
    """

    label: str
    latent: dict[str, Any]
    state: dict[str, Any]

    @abstractmethod
    def send(self, address: str, *args) -> bool:
        """Send one OSC message to the client; thread-safe. Never raises on network errors.

        Returns:
            False if the message could not be sent.
        """

    @abstractmethod
    def on_close(self, fn: Callable[["ClientSession"], None]) -> None:
        """Run fn(session) when the session ends (evicted, or the daemon stops)."""

    def sequence_messages(self, request_id: int, model_name: str, bars: int, seqs: list,
                          extras: list[dict] | None = None) -> list[tuple]:
        """The /bridge/seq argument tuples for `seqs` (lists of note rows); see
        bridge.daemon.protocol.sequence_messages."""
        return sequence_messages(request_id, model_name, bars, seqs, extras)

    def error(self, request_id: int, code: str, message: str) -> None:
        """Send /bridge/error id code message (the message cut to 2000 characters)."""
        self.send(ERROR, request_id, code, str(message)[:MAX_ERROR_MESSAGE])

    def fail(self, request_id: int, exc: BaseException, what: str | None = None) -> str:
        """Answer a request with the error reply for `exc` (bridge.daemon.protocol.error_reply).

        Returns:
            The error code sent.
        """
        code, message = error_reply(exc, what)
        self.error(request_id, code, message)
        return code

    def ok(self, request_id: int, obj: dict | None = None) -> None:
        """Send /bridge/ok id json; a reply over MAX_REPLY_BYTES is answered too_large instead."""
        text = dumps(obj if obj is not None else {})
        if len(text) + 64 > MAX_REPLY_BYTES:
            self.fail(request_id, TooLarge(f"the reply would be {len(text)} bytes, over the "
                                           f"{MAX_REPLY_BYTES}-byte datagram limit"))
            return
        self.send(OK, request_id, text)

    def done(self, request_id: int) -> None:
        """Send /bridge/done id."""
        self.send(DONE, request_id)

    def sequences(self, request_id: int, model_name: str, bars: int, seqs: list,
                  extras: list[dict] | None = None, done: bool = True) -> None:
        """Stream sequences (each a list of note rows) as /bridge/seq messages, then /bridge/done."""
        for args in self.sequence_messages(request_id, model_name, bars, seqs, extras):
            self.send(SEQ, *args)
        if done:
            self.done(request_id)


class SessionHost(Protocol):
    """What a Session needs from the daemon that owns it (bridge.daemon.server.BridgeServer)."""

    stats: Any   # .count_error(code)

    def reply_address(self, session: "Session") -> tuple:
        """Where the session's replies go."""

    def send_datagram(self, data: bytes, address: tuple) -> bool:
        """Send one datagram; False when it could not be sent."""


class Session(ClientSession):
    """One OSC client of the daemon, keyed by the (host, port) its requests come from: where its
    replies go, its serial request queue and its state. Created by the server on the first request."""

    def __init__(self, server: SessionHost, key: tuple):
        """Args:
            server: the daemon that owns the session (reply routing, the socket, statistics).
            key: the (host, port) the client's requests come from.
        """
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
        """(host, port) replies go to: the port `hello` registered, else the source address."""
        return self.server.reply_address(self)

    @property
    def label(self) -> str:
        """"host:port" of the client, for logs."""
        return f"{self.key[0]}:{self.key[1]}"

    # ---- sending ------------------------------------------------------------------------------
    def send(self, address: str, *args) -> bool:
        """Send one OSC message to this client's reply address, as one UDP datagram. Thread-safe
        (calls are serialised, so concurrent senders never interleave bytes).

        Returns:
            False if the datagram could not be sent (never raises on network errors: UDP is lossy).

        Raises:
            ValueError: the message does not fit one datagram; TypeError: an argument OSC cannot carry.
        """
        data = build_message(address, args)
        if len(data) > MAX_DATAGRAM:
            raise ValueError(f"OSC message of {len(data)} bytes does not fit one UDP datagram")
        with self._send_lock:
            return self.server.send_datagram(data, self.reply_address)

    def error(self, request_id: int, code: str, message: str) -> None:
        """Send /bridge/error and count it in the daemon's statistics."""
        self.server.stats.count_error(code)
        super().error(request_id, code, message)

    # ---- lifecycle ----------------------------------------------------------------------------
    def on_close(self, fn: Callable[["Session"], None]) -> None:
        """Run fn(session) when the session is evicted or the daemon shuts down."""
        self._close_callbacks.append(fn)

    def close(self) -> None:
        """Drop the queue and run the on_close callbacks (once; a failing one is logged)."""
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
        """Nothing queued or running for this client (it may be evicted)."""
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
