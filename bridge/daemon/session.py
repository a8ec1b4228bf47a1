"""One OSC client of the daemon: where its replies go, its reply budget, its musical state.

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
Live streams use `session.background(lane, fn)` (a decode queued like a request), `open_stream`
(the stream caps) and `lease_alive` (the stream's lease). The request queues themselves are the
server's (bridge.daemon.scheduler).
"""
from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from typing import Any, Callable, Protocol

from ..core.errors import Busy, TooLarge
from .protocol import (DONE, ERROR, MAX_DATAGRAM, MAX_ERROR_MESSAGE, MAX_REPLY_BYTES, OK, SEQ, args_size,
                       build_message, dumps, error_reply, sequence_messages)
from .typed import numeric_sequence_messages

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
        notes_format: how /bridge/seq carries its notes: "json" (the default) or "numeric" (the
            client asked for it in hello; bridge.daemon.typed).
    """

    label: str
    latent: dict[str, Any]
    state: dict[str, Any]
    notes_format: str = "json"

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
        """The /bridge/seq argument tuples for `seqs` (lists of note rows), in the client's
        `notes_format`: bridge.daemon.protocol.sequence_messages (JSON) or
        bridge.daemon.typed.numeric_sequence_messages. Either way a tuple starts with
        (id, index, count)."""
        if self.notes_format == "numeric":
            return numeric_sequence_messages(request_id, model_name, bars, seqs, extras)
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

    def can_reply(self, request_id: int, nbytes: int) -> bool:
        """Whether a reply of about `nbytes` may go out now; if not, the request has been answered
        (or dropped) already. Session: the reply budget of a client without a handshake."""
        return True

    def background(self, lane: str, fn: Callable[[], Any]) -> "Background":
        """Run fn() as background work of this client in `lane` (a model name): for live streams,
        whose decodes must queue like requests. Here: at once, in the caller's thread.

        Raises:
            Busy: the client has too much queued (Session).
        """
        handle = Background()
        try:
            handle.set(fn())
        except Exception as e:  # noqa: BLE001 - handed to whoever waits
            handle.set(error=e)
        return handle

    def open_stream(self, kind: str) -> "StreamSlot":
        """A slot for a live stream (a morph, a knob decode) of this client; `release()` it when the
        stream ends. Session: counted against the per-client and total caps.

        Raises:
            Busy: over a cap (Session).
        """
        return StreamSlot()

    def lease_alive(self, seconds: float) -> bool:
        """Whether the client was heard from in the last `seconds` (a live stream's lease)."""
        return True

    def ok(self, request_id: int, obj: dict | None = None) -> None:
        """Send /bridge/ok id json; a reply over MAX_REPLY_BYTES is answered too_large instead."""
        text = dumps(obj if obj is not None else {})
        if len(text) + 64 > MAX_REPLY_BYTES:
            self.fail(request_id, TooLarge(f"the reply would be {len(text)} bytes, over the "
                                           f"{MAX_REPLY_BYTES}-byte datagram limit"))
            return
        if self.can_reply(request_id, len(text) + 32):
            self.send(OK, request_id, text)

    def ok_args(self, request_id: int, args: tuple) -> None:
        """Send /bridge/ok id followed by typed arguments (the answer to a typed request,
        bridge.daemon.typed), within the reply budget."""
        if self.can_reply(request_id, args_size(args) + 32):
            self.send(OK, request_id, *args)

    def done(self, request_id: int) -> None:
        """Send /bridge/done id."""
        self.send(DONE, request_id)

    def sequences(self, request_id: int, model_name: str, bars: int, seqs: list,
                  extras: list[dict] | None = None, done: bool = True) -> None:
        """Stream sequences (each a list of note rows) as /bridge/seq messages, then /bridge/done."""
        messages = self.sequence_messages(request_id, model_name, bars, seqs, extras)
        if not self.can_reply(request_id, sum(args_size(m) + 4 for m in messages) + 20):
            return
        for args in messages:
            self.send(SEQ, *args)
        if done:
            self.done(request_id)


class Background:
    """The outcome of `ClientSession.background`: `wait()` returns fn's result or raises its error."""

    def __init__(self):
        self._done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def set(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> Any:
        """fn's result, or its exception raised here (Busy when it never ran: the daemon stopped).

        Raises:
            TimeoutError: not done within `timeout`.
        """
        if not self._done.wait(timeout):
            raise TimeoutError("background work not done in time")
        if self.error is not None:
            raise self.error
        return self.result


class StreamSlot:
    """A live stream's place under the stream caps; `release()` is idempotent."""

    def __init__(self, release: Callable[[], None] | None = None):
        self._release = release
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            fn, self._release = self._release, None
        if fn is not None:
            fn()


class ReplyBudget:
    """Bytes a client without a handshake may be sent: `factor` times the bytes it sent (its
    replies go to its source address, which a forged request could name: this bounds reflection)."""

    def __init__(self, factor: float):
        self.factor = factor
        self.received = 0
        self.sent = 0
        self._lock = threading.Lock()

    def credit(self, nbytes: int) -> None:
        with self._lock:
            self.received += nbytes

    def left(self) -> float:
        with self._lock:
            return self.factor * self.received - self.sent

    def spend(self, nbytes: int) -> bool:
        """Take `nbytes` from the budget; False (nothing taken) when they do not fit."""
        with self._lock:
            if self.sent + nbytes > self.factor * self.received:
                return False
            self.sent += nbytes
            return True


BUDGET_MESSAGE = ("the reply is over the budget of a client without a handshake (10x the bytes it sent); "
                  "say hello and echo the challenge (docs/osc-protocol.md)")


class SessionHost(Protocol):
    """What a Session needs from the daemon that owns it (bridge.daemon.server.BridgeServer)."""

    stats: Any   # .count_error(code), .count_drop(reason)

    def reply_address(self, session: "Session") -> tuple:
        """Where the session's replies go."""

    def send_datagram(self, data: bytes, address: tuple) -> bool:
        """Send one datagram; False when it could not be sent."""


class Session(ClientSession):
    """One OSC client of the daemon, keyed by the (host, port) its requests come from: where its
    replies go, its state, its reply budget. Created by the server on the first request.

    Until the client completes the hello handshake (bridge.daemon.server.BridgeServer.hello) its
    replies go back to its source address, within its `budget`; after it, to the reply port it
    proved it receives on, and it is a client of its own for scheduling (`client_key`)."""

    def __init__(self, server: SessionHost, key: tuple, budget: ReplyBudget | None = None):
        """Args:
            server: the daemon that owns the session (reply routing, the socket, statistics).
            key: the (host, port) the client's requests come from.
            budget: the reply budget while no handshake is complete (None: unlimited).
        """
        self.server = server
        self.key = key                       # (host, port) the requests come from
        self.host = key[0]
        self.reply_port: int | None = None   # set when the hello handshake completes
        self.session_id: str | None = None   # the id the handshake gave (requests may carry it)
        self.budget = budget
        self.created = time.monotonic()
        self.last_seen = self.created        # the last request (for eviction and stream leases)
        self.latent: dict[str, Any] = {}     # model name -> np.ndarray (z,)
        self.state: dict[str, Any] = {}      # free per-op state, namespaced keys
        self.requests = 0
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._inflight = 0                   # work items of this session queued or running
        self._closed = False
        self._close_callbacks: list[Callable[["Session"], None]] = []

    # ---- identity and where replies go --------------------------------------------------------
    @property
    def verified(self) -> bool:
        """The client completed the hello handshake: its reply port proved it receives."""
        return self.reply_port is not None

    @property
    def client_key(self) -> tuple:
        """The client this session's work is scheduled as: (host, session id) after a handshake,
        (host, None) before: every source port of a host without a handshake is one client."""
        return (self.host, self.session_id)

    @property
    def reply_address(self) -> tuple:
        """(host, port) replies go to: the verified reply port, else the source address."""
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
            False if the datagram could not be sent (never raises on network errors: UDP is lossy)
            or did not fit the reply budget (counted in stats.dropped.reply_budget).

        Raises:
            ValueError: the message does not fit one datagram; TypeError: an argument OSC cannot carry.
        """
        return self.send_to(None, address, *args)

    def send_to(self, port: int | None, address: str, *args) -> bool:
        """`send`, to this host's `port` instead of the reply address (the hello challenge); within
        the reply budget unless the session is verified and `port` is None."""
        data = build_message(address, args)
        if len(data) > MAX_DATAGRAM:
            raise ValueError(f"OSC message of {len(data)} bytes does not fit one UDP datagram")
        with self._send_lock:
            if self.budget is not None and (port is not None or not self.verified) \
                    and not self.budget.spend(len(data)):
                self.server.stats.count_drop("reply_budget")
                return False
            dest = self.reply_address if port is None else (self.host, port)
            return self.server.send_datagram(data, dest)

    def can_reply(self, request_id: int, nbytes: int) -> bool:
        """A reply of `nbytes` fits the budget (always, once verified); else the request is answered
        too_large with a short message (if even that fits) and False is returned."""
        if self.budget is None or self.verified or self.budget.left() >= nbytes:
            return True
        self.server.stats.count_drop("reply_budget")
        self.error(request_id, "too_large", BUDGET_MESSAGE)
        return False

    def error(self, request_id: int, code: str, message: str) -> None:
        """Send /bridge/error and count it in the daemon's statistics."""
        self.server.stats.count_error(code)
        super().error(request_id, code, message)

    # ---- background work, streams, leases -----------------------------------------------------
    def background(self, lane: str, fn: Callable[[], Any]) -> Background:
        """Queue fn() in `lane` as this client's background work (bridge.daemon.scheduler); it
        counts against the client's max_queue until it has run.

        Raises:
            Busy: the client's queue is full, or the daemon is stopping.
        """
        submit = getattr(self.server, "submit_background", None)
        if submit is None:
            return super().background(lane, fn)
        handle = Background()

        def run():
            try:
                handle.set(fn())
            except Exception as e:  # noqa: BLE001 - handed to whoever waits
                handle.set(error=e)

        if not submit(self, lane, run, lambda: handle.set(error=Busy("the daemon is shutting down"))):
            raise Busy("too many requests queued for this client; wait for replies")
        return handle

    def open_stream(self, kind: str) -> StreamSlot:
        """A stream slot under the daemon's caps (Limits.max_streams, max_streams_total).

        Raises:
            Busy: over a cap.
        """
        streams = getattr(self.server, "streams", None)
        if streams is None:
            return StreamSlot()
        return streams.acquire(self.client_key, kind)

    def lease_alive(self, seconds: float) -> bool:
        """The client sent a request (transport, ping, anything) in the last `seconds`."""
        return time.monotonic() - self.last_seen <= seconds

    # ---- lifecycle ----------------------------------------------------------------------------
    def on_close(self, fn: Callable[["Session"], None]) -> None:
        """Run fn(session) when the session is evicted or the daemon shuts down."""
        self._close_callbacks.append(fn)

    def close(self) -> None:
        """Run the on_close callbacks (once; a failing one is logged)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for fn in self._close_callbacks:
            try:
                fn(self)
            except Exception:  # a cleanup failure must not stop the others
                log.exception("session close callback failed client=%s", self.label)

    @property
    def closed(self) -> bool:
        return self._closed

    def touch(self) -> None:
        """A request arrived: the session is in use (eviction order, stream leases)."""
        self.last_seen = time.monotonic()
        self.requests += 1

    def begin(self) -> None:
        """A work item of this session was queued."""
        with self._lock:
            self._inflight += 1

    def end(self) -> None:
        """A work item of this session ran (or was dropped)."""
        with self._lock:
            self._inflight -= 1

    @property
    def idle(self) -> bool:
        """Nothing queued or running for this session (it may be evicted)."""
        with self._lock:
            return self._inflight <= 0

    @property
    def queued(self) -> int:
        """Work items of this session queued or running."""
        with self._lock:
            return self._inflight
