"""The OSC daemon (protocol: docs/osc-protocol.md): `BridgeServer`, model loading, and the daemon's
command-line options and serve loop (`python -m bridge serve` is bridge.cli.serve).

Threads: one receive thread parses datagrams (bundles split here, every request's JSON parsed and
bounded by bridge.daemon.values) and hands work to the Scheduler (bridge.daemon.scheduler), never
running a model; the scheduler's workers run requests: per client in request order, per model one
at a time, clients in turn. A client is a host plus a session: a source address that completed the
hello handshake (`BridgeServer.hello`), or all the source ports of a host that did not. Replies go
only to a port that proved it receives (the handshake); before it, back to the source within a
reply budget (bridge.daemon.session.ReplyBudget). The ops come from the `OpRegistry` the server is
given (bridge.daemon.registry); without one it serves the core ops (bridge.daemon.ops).
"""
from __future__ import annotations

import argparse
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
from collections import OrderedDict, deque
from dataclasses import fields as dc_fields, replace
from pathlib import Path
from typing import Callable

from pythonosc.osc_message import OscMessage
from pythonosc.parsing import osc_types

from ..core.errors import BadRequest, BridgeError, Busy, ModelError, TooLarge, UnknownOp
from ..runtime.engine import load_model
from ..runtime.package import list_models, package_dirs
from . import values
from .ops import core_registry
from .palettes import PaletteStore
from .protocol import INT32_MAX, INT32_MIN, OK, PREFIX, REPLY_ADDRESSES, dumps
from .registry import LIMIT_RANGES, Limits, OpRegistry, Request, Sequences, model_bars
from .scheduler import BACKGROUND, IMMEDIATE, SERIAL, Scheduler, Streams
from .session import ReplyBudget, Session
from .typed import FORMS as TYPED_FORMS, NOTES_FORMATS, is_typed

log = logging.getLogger("bridge.server")

MAX_SESSIONS = 1024
_SUPPORTED_TAGS = set("ihfdsbTFN")     # OSC 1.0 types plus the common 1.1 ones python-osc reads


# ---- structured logging -------------------------------------------------------------------------

# control characters (C0, DEL, C1) and the Unicode line separators: a client's bytes never start a
# new line, move the cursor or colour a terminal in the daemon's log
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_control(text: str) -> str:
    """`text` with every control character written as an escape (\\n, \\r, \\t, \\x1b, \\u2028)."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                                                 else f"\\u{ord(m.group()):04x}"), text)


def _logfmt_value(v) -> str:
    if isinstance(v, (list, tuple)) and all(isinstance(x, (str, int, float)) for x in v):
        v = ",".join(str(x) for x in v)
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    if s and all(c.isalnum() or c in "._-:/[]" for c in s) and not _CONTROL.search(s):
        return s
    return '"' + escape_control(s.replace("\\", "\\\\").replace('"', '\\"')) + '"'


class LogfmtFormatter(logging.Formatter):
    """ts=... level=INFO logger=bridge.server msg="..." key=value ... (control characters escaped)"""

    def format(self, record):
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        parts = [f"ts={ts}", f"level={record.levelname}", f"logger={record.name}",
                 f"msg={_logfmt_value(record.getMessage())}"]
        for k, v in (getattr(record, "fields", None) or {}).items():
            parts.append(f"{escape_control(str(k))}={_logfmt_value(v)}")
        if record.exc_info:
            parts.append(f"exc={_logfmt_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg and the record's fields (json escapes
    control characters itself)."""

    def format(self, record):
        obj = {"ts": record.created, "level": record.levelname, "logger": record.name,
               "msg": record.getMessage()}
        obj.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, default=str)


def setup_logging(level: str = "INFO", fmt: str = "logfmt") -> None:
    """Send every log record to stderr as logfmt or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))


class Throttle:
    """Rate limit for repeated log lines: per message, the first `burst` in a `window` of seconds
    are logged, the rest only counted; the count is logged once the window is over ("dropped
    malformed datagram: 12,345 more in the last 10 s"), by the next such line or by `flush`."""

    def __init__(self, window: float = 10.0, burst: int = 5, clock: Callable[[], float] = time.monotonic):
        self.window, self.burst, self.clock = window, burst, clock
        self._lock = threading.Lock()
        self._state: dict[str, list] = {}       # msg -> [window start, logged, suppressed, level]

    def allow(self, level: int, msg: str) -> tuple[bool, list[tuple[int, str, int]]]:
        """(log this one?, [(level, msg, suppressed)] summaries of windows that are over)."""
        now = self.clock()
        with self._lock:
            summaries = self._expire(now)
            st = self._state.get(msg)
            if st is None:
                if len(self._state) >= 1000:      # many distinct messages: forget the oldest
                    self._state.pop(next(iter(self._state)))
                st = self._state[msg] = [now, 0, 0, level]
            if st[1] < self.burst:
                st[1] += 1
                return True, summaries
            st[2] += 1
            return False, summaries

    def flush(self) -> list[tuple[int, str, int]]:
        """Summaries of the windows that are over."""
        with self._lock:
            return self._expire(self.clock())

    def _expire(self, now: float) -> list[tuple[int, str, int]]:
        out = []
        for msg in [m for m, st in self._state.items() if now - st[0] >= self.window]:
            st = self._state.pop(msg)
            if st[2]:
                out.append((st[3], msg, st[2]))
        return out


THROTTLE = Throttle()


def _summaries(items) -> None:
    for level, msg, n in items:
        log.log(level, f"{msg}: {n:,} more in the last {THROTTLE.window:g} s",
                extra={"fields": {"suppressed": n}})


def event(level: int, msg: str, **fields) -> None:
    """Log `msg` with structured fields (key=value in logfmt, keys in JSON). Warnings are
    rate-limited per message (Throttle): what clients cause cannot flood the log."""
    if level == logging.WARNING:
        ok, summaries = THROTTLE.allow(level, msg)
        _summaries(summaries)
        if not ok:
            return
    log.log(level, msg, extra={"fields": fields})


def log_exception(msg: str, **fields) -> None:
    """log.exception, rate-limited like warnings (a bug a client can trigger cannot flood the log)."""
    ok, summaries = THROTTLE.allow(logging.ERROR, msg)
    _summaries(summaries)
    if ok:
        log.exception(msg, extra={"fields": fields})


def flush_log_summaries() -> None:
    """Log the counts of rate-limited lines whose window is over (the serve loop calls it)."""
    _summaries(THROTTLE.flush())


# ---- statistics ---------------------------------------------------------------------------------

class Stats:
    """The daemon's counters (datagrams, drops, requests, errors) and per-op latencies; thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self.started = time.time()
        self.datagrams = 0
        self.dropped: dict[str, int] = {}
        self.requests: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.latency: dict[str, deque] = {}

    def count_datagram(self):
        with self._lock:
            self.datagrams += 1

    def count_drop(self, reason: str):
        with self._lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def count_error(self, code: str):
        with self._lock:
            self.errors[code] = self.errors.get(code, 0) + 1

    def count_request(self, op: str, ms: float):
        with self._lock:
            self.requests[op] = self.requests.get(op, 0) + 1
            self.latency.setdefault(op, deque(maxlen=2048)).append(ms)

    def snapshot(self) -> dict:
        with self._lock:
            lat = {}
            for op, d in self.latency.items():
                v = sorted(d)
                lat[op] = {"count": self.requests[op],
                           "p50_ms": round(v[len(v) // 2], 3),
                           "p99_ms": round(v[min(len(v) - 1, int(len(v) * 0.99))], 3),
                           "max_ms": round(v[-1], 3)}
            return {"uptime_s": round(time.time() - self.started, 3), "datagrams": self.datagrams,
                    "requests": sum(self.requests.values()), "errors": dict(self.errors),
                    "dropped": dict(self.dropped), "ops": lat}


# ---- work items ---------------------------------------------------------------------------------

class _Call:
    __slots__ = ("op", "id", "fields", "source", "received", "form")

    def __init__(self, op, request_id, fields: dict, source, form=None):
        self.op, self.id, self.fields, self.source = op, request_id, fields, source
        self.form = form          # the bridge.daemon.typed.TypedForm of a typed request (typed ok reply)
        self.received = time.monotonic()


class _Fail:
    """A request refused before it reaches an op; `error` is the BridgeError it is answered with."""
    __slots__ = ("op", "id", "error", "received")

    def __init__(self, op, request_id, error: BridgeError):
        self.op, self.id, self.error = op, request_id, error
        self.received = time.monotonic()


def _salvage(data: bytes) -> tuple[str | None, int | None]:
    """Address and request id of a datagram python-osc cannot (or should not) parse."""
    try:
        address, i = osc_types.get_string(data, 0)
        tags, i = osc_types.get_string(data, i)
    except Exception:
        return None, None
    if tags.startswith(",i") and len(data) >= i + 4:
        return address, struct.unpack(">i", data[i:i + 4])[0]
    return address, None


def _request_id(params: list) -> tuple[int | None, bool]:
    """(id, well_typed). A float that holds an int32 still names the request, for the error reply."""
    if not params:
        return None, False
    v = params[0]
    if isinstance(v, int) and not isinstance(v, bool) and INT32_MIN <= v <= INT32_MAX:
        return v, True
    if isinstance(v, float) and v.is_integer() and INT32_MIN <= v <= INT32_MAX:
        return int(v), False
    return None, False


BUNDLE = b"#bundle\x00"
MAX_BUNDLE_DEPTH = 8


def split_datagram(data: bytes, drops: dict, depth: int = 0) -> list[bytes]:
    """The OSC messages of a datagram (a message, or a bundle of messages and bundles, in order).

    A bundle element whose declared size is negative or runs past the end of its bundle is dropped
    with whatever follows it (counted in `drops`: bundle_negative_size, bundle_truncated); a
    malformed bundle header or a bundle nested deeper than MAX_BUNDLE_DEPTH counts as malformed."""
    if not data.startswith(BUNDLE):
        return [data]
    if len(data) < 16 or depth >= MAX_BUNDLE_DEPTH:
        drops["malformed"] = drops.get("malformed", 0) + 1
        return []
    out, i, n = [], 16, len(data)
    while i < n:
        if i + 4 > n:
            drops["bundle_truncated"] = drops.get("bundle_truncated", 0) + 1
            break
        size = struct.unpack(">i", data[i:i + 4])[0]
        if size < 0:
            drops["bundle_negative_size"] = drops.get("bundle_negative_size", 0) + 1
            break
        if i + 4 + size > n:
            drops["bundle_truncated"] = drops.get("bundle_truncated", 0) + 1
            break
        out.extend(split_datagram(data[i + 4:i + 4 + size], drops, depth + 1))
        i += 4 + size
    return out


def public_failure(entry: dict) -> dict:
    """A failed package as the `models` op shows it: its directory name, never an absolute path
    (the full path stays in the daemon's log)."""
    source = str(entry.get("source", ""))
    name = Path(source).name or source
    error = str(entry.get("error", ""))
    if source:
        error = error.replace(source, name)
    error = re.sub(r"(?<![\w.])(?:/[^/\s'\":]+)+/([^/\s'\":]+)", r"\1", error)   # other absolute paths
    return {"source": name, "error": error}


CHALLENGE_TTL_S = 30.0
MAX_CHALLENGES = 4096
AMPLIFICATION = 10            # bytes a client without a handshake may be sent per byte it sent


# ---- the daemon ---------------------------------------------------------------------------------

class BridgeServer:
    """The daemon: a UDP socket, a receive thread, a scheduler with its workers, one Session per
    client source address (docs/osc-protocol.md: "Where replies go", "Order and fairness").

    Attributes:
        models: name -> loaded Model. ops: the OpRegistry served. limits: the request Limits.
        stats: counters and latencies (the `stats` op). address: (host, port) once started.
        token: the shared secret every request must carry (None: none needed).
        streams: the live streams and their caps.
    """

    def __init__(self, models: dict, ops: OpRegistry | None = None, *, host: str = "127.0.0.1",
                 port: int = 9000, workers: int | None = None, limits: Limits = Limits(), failed_models=(),
                 max_sessions: int = MAX_SESSIONS, token: str | None = None,
                 palettes: PaletteStore | None = None):
        """Args:
            models: name -> Model to serve.
            ops: the ops to serve (default: bridge.daemon.ops.core_registry()).
            host, port: the address to bind (port 0: a free one).
            workers: worker threads (default 2..4 by CPU count).
            limits: request limits.
            failed_models: [{source, error}] of models that did not load (the `models` op lists
                them without their paths).
            max_sessions: clients kept; the least recently seen idle ones are evicted beyond it.
            token: a shared secret every request must carry in its "token" field.
            palettes: the players' palettes (default: a new one in memory only).
        """
        self.models = dict(models)
        self.ops = ops if ops is not None else core_registry()
        self.failed_models = [public_failure(f) for f in failed_models]
        self.host, self.port = host, port
        self.limits = limits
        self.workers = workers or max(2, min(4, os.cpu_count() or 2))
        self.max_sessions = max_sessions
        self.token = token
        self.palettes = palettes if palettes is not None else PaletteStore()
        self.stats = Stats()
        self.streams = Streams(limits.max_streams, limits.max_streams_total)
        self.scheduler: Scheduler | None = None
        self._sessions: dict[tuple, Session] = {}
        self._by_id: dict[str, Session] = {}
        self._challenges: OrderedDict[tuple, tuple] = OrderedDict()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._routes: list = []      # handlers of addresses outside /bridge/ (add_route)

    # ---- lifecycle ----
    def start(self) -> tuple:
        """Bind the socket and start the receive thread and the workers.

        Returns:
            The bound (host, port).

        Raises:
            OSError: the address cannot be bound.
        """
        infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, 4 * 1024 * 1024)
            except OSError:
                pass
        sock.bind(addr)
        sock.settimeout(0.2)
        self._sock = sock
        self.address = sock.getsockname()[:2]
        self.scheduler = Scheduler(self.workers, self.limits.max_queue)
        self._thread = threading.Thread(target=self._receive_loop, name="bridge-receive", daemon=True)
        self._thread.start()
        return self.address

    @property
    def url(self) -> str:
        """udp://host:port of the bound socket."""
        host, port = self.address
        return f"udp://[{host}]:{port}" if ":" in host else f"udp://{host}:{port}"

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop receiving, let running requests finish (up to `timeout`), answer the rest `busy`."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._drain_socket()   # requests already received by the OS get an answer too (busy)
        if self.scheduler is not None:
            for task in self.scheduler.stop(timeout):   # requests that never started still get an answer
                try:
                    if task.drop is not None:
                        task.drop()
                except Exception:
                    log.exception("shutdown reply failed")
        for hook in self.ops.shutdown_hooks():
            try:
                hook()
            except Exception:
                log.exception("shutdown hook failed")
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
            self._by_id.clear()
        for s in sessions:
            s.close()
        if self._sock is not None:
            self._sock.close()

    def _drain_socket(self) -> None:
        if self._sock is None:
            return
        self._sock.setblocking(False)
        for _ in range(10000):
            try:
                data, source = self._sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            try:
                self._datagram(data, source)
            except Exception:
                log.exception("datagram handling failed during shutdown")

    # ---- routing and the hello handshake ----
    def reply_address(self, session: Session) -> tuple:
        """Where a session's replies go: the reply port its handshake verified, else its source
        address (within the reply budget)."""
        if session.reply_port:
            return (session.host, session.reply_port)
        return session.key

    def hello(self, session: Session, request: Request) -> dict | None:
        """The `hello` op's handshake (docs/osc-protocol.md, "Where replies go").

        Without "challenge": send a challenge to host:reply_port (or to the source port without
        one) and return None (answered); the source keeps its current binding meanwhile. A source
        already bound to that very port needs no new proof: it gets the hello reply at once. With
        the "challenge" that arrived there (from any port of the same host, within
        CHALLENGE_TTL_S): bind this source to that reply port under a new session id and return
        the hello reply, which goes there. The hello that returns the reply also sets the session's
        `notes_format` ("notes_format": "numeric" or "json", absent: "json"; protocol 1.2).

        Returns:
            None, or {"session", "notes_format", "typed"} for the hello reply.

        Raises:
            BadRequest: bad fields, an unknown or expired challenge.
        """
        port = request.integer("reply_port", None, 1, 65535)
        request.string("scope", "host", ("host", "source"))     # protocol 1.0: accepted, no effect
        notes_format = request.string("notes_format", "json", NOTES_FORMATS)
        answer = {"notes_format": notes_format, "typed": sorted(op for op in TYPED_FORMS if op in self.ops)}
        challenge = request.fields.get("challenge")
        now = time.monotonic()
        if challenge is None:
            dest = port or session.key[1]
            if session.verified and dest == session.reply_port:
                session.notes_format = notes_format
                return dict(answer, session=session.session_id)
            token = secrets.token_hex(8)
            with self._lock:
                self._challenges[(session.host, token)] = (dest, now + CHALLENGE_TTL_S)
                while len(self._challenges) > MAX_CHALLENGES:
                    self._challenges.popitem(last=False)
            text = dumps({"challenge": token, "reply_to": f"{session.host}:{dest}"})
            if session.can_reply(request.id, len(text) + 32):
                session.send_to(dest, OK, request.id, text)
            return None
        challenge = values.string("challenge", challenge, max_len=64)
        with self._lock:
            entry = self._challenges.pop((session.host, challenge), None)
        if entry is None or entry[1] < now:
            raise BadRequest("unknown or expired 'challenge': say hello without one to get a new one")
        dest = entry[0]
        if port is not None and port != dest:
            raise BadRequest(f"'reply_port' {port} is not the port the challenge was sent to ({dest})")
        self._bind(session, dest)
        session.notes_format = notes_format
        event(logging.INFO, "handshake complete", client=session.label, reply_port=dest,
              session=session.session_id, notes_format=notes_format)
        return dict(answer, session=session.session_id)

    def _bind(self, session: Session, port: int) -> None:
        with self._lock:
            if session.session_id is not None:
                self._by_id.pop(session.session_id, None)
            session.session_id = secrets.token_hex(8)
            session.reply_port = port
            self._by_id[session.session_id] = session

    def send_datagram(self, data: bytes, address: tuple) -> bool:
        """Send one datagram; False (counted as a drop) when the OS refuses it."""
        try:
            self._sock.sendto(data, address)
            return True
        except OSError as e:
            self.stats.count_drop("send_failed")
            event(logging.DEBUG, "send failed", to=f"{address[0]}:{address[1]}", error=str(e))
            return False

    def submit_background(self, session: Session, lane: str, run, drop) -> bool:
        """Queue a session's background work (Session.background) in the lane of model `lane`;
        False when its client's queue is full or the daemon is stopping."""
        lane = lane if lane in self.models else ""
        session.begin()

        def task():
            try:
                run()
            finally:
                session.end()

        def dropped():
            try:
                drop()
            finally:
                session.end()
        if self.scheduler is None or not self.scheduler.submit(session.client_key, task, lane=lane,
                                                               kind=BACKGROUND, drop=dropped):
            session.end()
            return False
        return True

    def add_route(self, route) -> None:
        """Hand every message outside /bridge/ whose address `route.claims(address)` to
        `route.handle(address, params, source)`, called in the receive thread: the route must not
        block (it queues its work with `submit_background`). bridge.surface uses it for the typed
        control-surface addresses (docs/osc-protocol.md, "Surfaces"); /bridge/ is never routed."""
        self._routes.append(route)

    def sessions(self) -> list[Session]:
        """The current sessions."""
        with self._lock:
            return list(self._sessions.values())

    def stats_snapshot(self) -> dict:
        """The `stats` op's answer: counters, latencies, sessions, queue, streams, workers, models."""
        snap = self.stats.snapshot()
        sessions = self.sessions()
        sched = self.scheduler.snapshot() if self.scheduler is not None else {"queued": 0, "lanes": {}}
        snap.update(sessions=len(sessions), verified=sum(1 for s in sessions if s.verified),
                    queued=sched["queued"], lanes=sched["lanes"], streams=self.streams.snapshot(),
                    workers=self.workers, models=sorted(self.models))
        return snap

    def _session(self, source: tuple) -> Session:
        key = tuple(source[:2])
        with self._lock:
            s = self._sessions.get(key)
            if s is not None:
                return s
            s = Session(self, key, ReplyBudget(AMPLIFICATION))
            self._sessions[key] = s
            evicted = []
            if len(self._sessions) > self.max_sessions:
                idle = sorted((x for x in self._sessions.values() if x is not s and x.idle),
                              key=lambda x: x.last_seen)
                for x in idle[:len(self._sessions) - self.max_sessions]:
                    del self._sessions[x.key]
                    if x.session_id is not None:
                        self._by_id.pop(x.session_id, None)
                    evicted.append(x)
        for x in evicted:
            x.close()
        return s

    # ---- receive thread ----
    def _receive_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                data, source = self._sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError as e:
                if self._stopping.is_set():
                    break
                event(logging.DEBUG, "receive error", error=str(e))
                continue
            try:
                self._datagram(data, source)
            except Exception:  # the receive thread must survive anything a client sends
                log_exception("datagram handling failed", client=f"{source[0]}:{source[1]}")

    def _datagram(self, data: bytes, source: tuple) -> None:
        self.stats.count_datagram()
        drops: dict[str, int] = {}
        elements = split_datagram(data, drops)
        for reason, n in drops.items():
            for _ in range(n):
                self.stats.count_drop(reason)
            event(logging.WARNING, f"dropped a bundle element ({reason})", client=f"{source[0]}:{source[1]}",
                  bytes=len(data))
        if not elements:
            return
        credited = False
        for raw in elements:
            answerable = self._element(raw, source, len(data), credited)
            credited = credited or answerable

    def _element(self, data: bytes, source: tuple, size: int, credited: bool) -> bool:
        """Handle one OSC message of a datagram; True once the datagram's source was credited with
        its bytes (the reply budget)."""
        problem = None
        address = rid = None
        params: list = []
        if data.startswith(b"/"):
            address, rid = _salvage(data)
            tags = None
            try:
                _, i = osc_types.get_string(data, 0)
                tags, _ = osc_types.get_string(data, i) if i < len(data) else (",", i)
            except Exception as e:
                problem = f"malformed OSC message: {e}"
            if tags is not None and (not tags.startswith(",") or not set(tags[1:]) <= _SUPPORTED_TAGS):
                problem = f"unsupported OSC type tags {tags!r} (use ,is: int32 id, JSON string)"
        else:
            problem = "not an OSC message"
        if problem is None:
            try:
                msg = OscMessage(data)
                address, params = msg.address, list(msg.params)
            except Exception as e:
                problem = f"malformed OSC packet: {e}"
                address, rid = _salvage(data)
        answerable = (address is not None and address not in REPLY_ADDRESSES
                      and (problem is None or (address.startswith(PREFIX) and rid is not None)))
        if answerable and not credited:
            self._session(source).budget.credit(size)
        if problem is not None:
            if address is not None and address.startswith(PREFIX) and address not in REPLY_ADDRESSES \
                    and rid is not None:
                self._submit(self._session(source), None, _Fail(address[len(PREFIX):], rid, BadRequest(problem)))
            else:
                self.stats.count_drop("malformed")
                event(logging.WARNING, "dropped malformed datagram", client=f"{source[0]}:{source[1]}",
                      bytes=size, reason=problem)
            return answerable or credited
        self._message(address, params, source, size)
        return answerable or credited

    def _message(self, address: str, params: list, source: tuple, size: int) -> None:
        client = f"{source[0]}:{source[1]}"
        if address in REPLY_ADDRESSES:
            # a reply sent back to us (a patch looping its output): answering would ping-pong forever
            self.stats.count_drop("reply_address")
            event(logging.DEBUG, "dropped a reply-address message", client=client, address=address)
            return
        route = None if address.startswith(PREFIX) else next((r for r in self._routes if r.claims(address)), None)
        if route is not None:     # a surface's typed message: no request id, its own replies
            route.handle(address, params, tuple(source[:2]))
            return
        rid, well_typed = _request_id(params)
        if rid is None:
            self.stats.count_drop("no_request_id")
            event(logging.WARNING, "dropped a message without an int32 request id", client=client,
                  address=address[:200], args=repr(params)[:200])
            return
        op = address[len(PREFIX):] if address.startswith(PREFIX) else address
        session = self._session(source)
        spec = self.ops.get(op) if address.startswith(PREFIX) else None
        lane = ""
        if spec is None:
            item = _Fail(op[:200], rid, UnknownOp(f"no op {address[:200]!r}; ops: {', '.join(self.ops.names())}"))
        elif size > self.limits.max_request_bytes:
            item = _Fail(op, rid, TooLarge(f"request of {size} bytes, the limit is {self.limits.max_request_bytes}"))
        elif not well_typed:
            item = _Fail(op, rid, BadRequest(f"the request id must be an int32, got {params[0]!r}"))
        elif is_typed(op, params):      # protocol 1.2: transport / knob as plain OSC numbers
            item, session = self._call(op, rid, None, session, params[1:])
            if isinstance(item, _Call):
                model = item.fields.get("model")
                lane = model if isinstance(model, str) and model in self.models else ""
        elif len(params) > 2:
            item = _Fail(op, rid, BadRequest(f"a request is (int32 id, JSON object string); got {len(params)} arguments"))
        elif len(params) == 2 and not isinstance(params[1], str):
            item = _Fail(op, rid, BadRequest(f"the second argument must be a JSON object string, "
                                             f"got {type(params[1]).__name__}"))
        else:
            item, session = self._call(op, rid, params[1] if len(params) == 2 else "{}", session)
            if isinstance(item, _Call):
                model = item.fields.get("model")
                lane = model if isinstance(model, str) and model in self.models else ""
        session.touch()
        self._submit(session, spec, item, lane)

    def _call(self, op: str, rid: int, text: str | None, session: Session, typed_args: list | None = None):
        """(work item, session it belongs to) for a well-formed request: its JSON parsed and bounded
        (bridge.daemon.values), or with `typed_args` its typed form read (bridge.daemon.typed), the
        token checked, a "session" field resolved."""
        form = TYPED_FORMS[op] if typed_args is not None else None
        try:
            fields = values.parse_object(text) if form is None else form.fields(typed_args)
        except BadRequest as e:
            return _Fail(op, rid, e), session
        token = fields.pop("token", None)
        if self.token is not None and not (isinstance(token, str) and hmac.compare_digest(
                token.encode("utf-8", "replace"), self.token.encode("utf-8"))):
            self.stats.count_drop("bad_token")
            event(logging.WARNING, "request without the right token", client=session.label, op=op[:100])
            return _Fail(op, rid, BadRequest("this daemon needs the shared secret in the request's 'token' "
                                             "field (started with --token)")), session
        sid = fields.pop("session", None)
        if sid is not None:
            with self._lock:
                target = self._by_id.get(sid) if isinstance(sid, str) else None
            if target is None or target.host != session.host:
                return _Fail(op, rid, BadRequest("unknown 'session': complete the hello handshake again")), session
            session = target
        return _Call(op, rid, fields, session.key, form), session

    def _submit(self, session: Session, spec, item, lane: str = "") -> None:
        kind = IMMEDIATE if (spec is not None and not spec.serial and isinstance(item, _Call)) else SERIAL
        session.begin()
        accepted = self.scheduler is not None and self.scheduler.submit(
            session.client_key, lambda: self._execute(session, item), lane=lane, kind=kind,
            drop=lambda: self._drop(session, item))
        if not accepted:
            session.end()
            # the one reply that may overtake earlier ones: the queue is full by definition
            busy = Busy("the daemon is shutting down") if self._stopping.is_set() else Busy(
                f"more than {self.limits.max_queue} requests queued for this client; wait for replies")
            session.fail(item.id, busy)

    def _drop(self, session: Session, item) -> None:
        try:
            session.fail(item.id, item.error if isinstance(item, _Fail) else Busy("the daemon is shutting down"))
        finally:
            session.end()

    # ---- workers ----
    def _execute(self, session: Session, item) -> None:
        try:
            self._run(session, item)
        finally:
            session.end()

    def _run(self, session: Session, item) -> None:
        t0 = time.perf_counter()
        status = "ok"
        try:
            if isinstance(item, _Fail):
                status = session.fail(item.id, item.error)
                return
            if self._stopping.is_set():
                status = session.fail(item.id, Busy("the daemon is shutting down"))
                return
            spec = self.ops.get(item.op)
            request = Request(self, item.op, item.id, item.fields, item.source)
            try:
                result = spec.handler(session, request)
                if isinstance(result, dict) and item.form is not None:
                    session.ok_args(item.id, item.form.reply_args(result))
                elif isinstance(result, dict):
                    session.ok(item.id, result)
                elif isinstance(result, Sequences):
                    session.sequences(item.id, result.model.name, model_bars(result.model),
                                      result.rows, result.extras)
                elif result is not None:
                    raise TypeError(f"op {item.op!r} returned {type(result).__name__}")
            except Exception as e:
                if not isinstance(e, BridgeError):   # a bug, not a bad request: keep the traceback
                    log_exception("request failed", op=item.op, id=item.id, client=session.label)
                status = session.fail(item.id, e)
        except Exception:  # even the error reply failed: log, never let it reach the worker
            status = "internal"
            log_exception("reply failed", op=item.op, id=item.id)
        finally:
            ms = (time.perf_counter() - t0) * 1000.0
            self.stats.count_request(item.op if self.ops.get(item.op) else "?", ms)
            event(logging.DEBUG, "request", op=item.op, id=item.id, client=session.label,
                  status=status, ms=round(ms, 3),
                  queued_ms=round((time.monotonic() - item.received) * 1000.0 - ms, 3))


# ---- models ---------------------------------------------------------------------------------------

def load_models(dirs=(), include_shipped: bool = True, provider: str = "auto") -> tuple[dict, list]:
    """Load the shipped models plus the packages in `dirs`, warming each up with one decode.

    Args:
        dirs: package directories, or directories of packages.
        include_shipped: also the packages of bridge/models/ (and $LATENT_BRIDGE_MODELS).
        provider: the onnxruntime provider.

    Returns:
        (name -> Model, [{source, error}] for every model that failed): a model that fails is
        logged and reported, never fatal (the `models` op shows the failures without their paths).
    """
    sources: list = []
    if include_shipped:
        try:
            sources.extend(list_models())
        except Exception as e:
            event(logging.ERROR, "cannot list the shipped models", error=f"{type(e).__name__}: {e}")
    for d in dirs:
        found = package_dirs(d)
        if not found:
            event(logging.ERROR, "no model package found", path=str(d))
        sources.extend(found)
    models, failed = {}, []
    for src in sources:
        label = str(src.get("path") or src.get("name")) if isinstance(src, dict) else str(src)
        t0 = time.perf_counter()
        try:
            if isinstance(src, dict) and src.get("error"):
                raise ModelError(src["error"])
            m = load_model(Path(label), provider=provider)
            m.sample(1, temperature=0.0, seed=0)   # warm-up: first runs allocate and JIT
        except Exception as e:
            failed.append({"source": label, "error": f"{type(e).__name__}: {e}"})
            event(logging.ERROR, "model failed to load; skipped", source=label, error=f"{type(e).__name__}: {e}")
            continue
        if m.name in models:
            event(logging.WARNING, "model name loaded twice; the later one serves", model=m.name, source=label)
        models[m.name] = m
        event(logging.INFO, "model loaded", model=m.name, source=label,
              ms=round((time.perf_counter() - t0) * 1000.0, 1))
    return models, failed


# ---- command line ----------------------------------------------------------------------------------

def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _limit_override(text: str):
    key, sep, value = text.partition("=")
    names = {f.name: f.type for f in dc_fields(Limits)}
    if not sep or key not in names:
        raise argparse.ArgumentTypeError(f"--limit takes NAME=VALUE with NAME one of {', '.join(names)}")
    try:
        v = float(value) if "float" in str(names[key]) else int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad value for {key}: {value!r}") from None
    lo, hi = LIMIT_RANGES[key]
    if not lo <= v <= hi:   # also NaN
        raise argparse.ArgumentTypeError(f"{key} must be in {lo:g}..{hi:g}, got {value}")
    return key, v


def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a UDP port is an integer 1..65535 (0: any free port), got {text!r}") from None
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"a UDP port is 1..65535 (0: any free port), got {v}")
    return v


def _workers(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    if not 1 <= v <= 64:
        raise argparse.ArgumentTypeError(f"--workers must be an integer 1..64, got {text!r}")
    return v


MIN_TOKEN_CHARS = 12


def _token(text: str) -> str:
    if len(text) < MIN_TOKEN_CHARS or not text.isprintable():
        raise argparse.ArgumentTypeError(f"--token must be at least {MIN_TOKEN_CHARS} printable characters")
    return text


def configure_parser(p: argparse.ArgumentParser) -> None:
    """Add the daemon's options (address, models, provider, workers, logging, limits, token,
    --ops-module)."""
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=9000, help="UDP port 1..65535 (default 9000; 0 picks a free "
                                                            "one, printed in the ready line)")
    p.add_argument("--models", nargs="+", action="extend", default=[], metavar="DIR",
                   help="model packages to serve besides the shipped ones: a package dir or a dir of packages")
    p.add_argument("--no-default-models", action="store_true", help="do not load the shipped models")
    p.add_argument("--provider", default="auto", help="onnxruntime provider (default auto)")
    p.add_argument("--workers", type=_workers, default=None, help="worker threads 1..64 (default 2..4 by CPU count)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--log-format", default="logfmt", choices=["logfmt", "json"])
    p.add_argument("--allow-remote", action="store_true",
                   help="allow binding a non-loopback address; needs --token (see docs/osc-protocol.md, Security)")
    p.add_argument("--token", type=_token, default=None, metavar="SECRET",
                   help="a shared secret every request must carry in its 'token' field (required with "
                        "--allow-remote; default $LATENT_BRIDGE_TOKEN)")
    p.add_argument("--ops-module", action="append", default=[], metavar="MODULE",
                   help="import MODULE and serve the ops it marks with bridge.daemon.registry.op (repeatable)")
    p.add_argument("--state-dir", default=None, metavar="DIR",
                   help="keep the daemon's state (learned palettes) in DIR and read it back at start "
                        "(default: none, palettes live until the daemon stops)")
    p.add_argument("--limit", action="append", default=[], type=_limit_override, metavar="NAME=VALUE",
                   help="override a request limit, e.g. --limit max_queue=128")


# what the serve loop calls once the server is bound, before the ready line: fn(server, args);
# an exception stops the daemon (exit status 2)
StartHook = Callable[["BridgeServer", argparse.Namespace], None]


def main(args: argparse.Namespace, ops: OpRegistry, on_start: tuple[StartHook, ...] = ()) -> int:
    """Run the daemon until SIGINT / SIGTERM.

    Args:
        args: options from `configure_parser`.
        ops: the ops to serve.
        on_start: hooks run once the server is bound (e.g. the live side opening MIDI ports).

    Returns:
        The exit status: 0 after a clean stop, 1 when the address cannot be bound, 2 for a refused
        configuration (a non-loopback host without --allow-remote, a failing start hook).
    """
    setup_logging(args.log_level, args.log_format)
    token = args.token
    if token is None and os.environ.get("LATENT_BRIDGE_TOKEN"):
        try:
            token = _token(os.environ["LATENT_BRIDGE_TOKEN"])
        except argparse.ArgumentTypeError as e:
            event(logging.ERROR, f"LATENT_BRIDGE_TOKEN: {e}")
            return 2
    args.token = token
    if args.allow_remote and token is None:
        event(logging.ERROR, "--allow-remote needs --token SECRET (or $LATENT_BRIDGE_TOKEN): OSC has no "
                             "authentication of its own, so every request must carry the shared secret")
        return 2
    if not _is_loopback(args.host):
        if not args.allow_remote:
            event(logging.ERROR, f"refusing to bind {args.host}: not a loopback address; OSC has no "
                                 f"authentication. Pass --allow-remote --token SECRET to do it anyway")
            return 2
        event(logging.WARNING, f"binding {args.host}: anyone who can reach this port can send requests; "
                               f"only those carrying the --token secret are served")
    limits = replace(Limits(), **dict(args.limit)) if args.limit else Limits()
    try:
        limits.check()
    except ValueError as e:
        event(logging.ERROR, str(e))
        return 2
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _serve(args, ops, on_start, limits, stop)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _serve(args: argparse.Namespace, ops: OpRegistry, on_start, limits: Limits, stop: threading.Event) -> int:
    models, failed = load_models(args.models, not args.no_default_models, args.provider)
    if stop.is_set():
        event(logging.INFO, "stopped before serving")
        return 0
    if not models:
        event(logging.WARNING, "no model loaded; only ping, hello, models and stats will work")
    try:
        palettes = PaletteStore(args.state_dir) if getattr(args, "state_dir", None) else None
    except OSError as e:
        event(logging.ERROR, f"cannot use --state-dir {args.state_dir}", error=str(e))
        return 2
    server = BridgeServer(models, ops, host=args.host, port=args.port, workers=args.workers, limits=limits,
                          failed_models=failed, token=getattr(args, "token", None), palettes=palettes)
    try:
        server.start()
    except OSError as e:
        event(logging.ERROR, f"cannot bind udp {args.host}:{args.port}", error=str(e))
        return 1
    for hook in on_start:
        try:
            hook(server, args)
        except Exception as e:  # a bad knobs.toml or a missing MIDI port: say so and stop cleanly
            event(logging.ERROR, f"{getattr(hook, '__module__', 'a start hook')} could not start",
                  error=f"{type(e).__name__}: {e}")
            server.shutdown()
            return 2
    names = ", ".join(sorted(models)) or "(none)"
    event(logging.INFO, f"ready on {server.url} with models: {names}", host=server.address[0],
          port=server.address[1], models=sorted(models), failed=len(failed), workers=server.workers)
    try:
        while not stop.wait(0.5):
            flush_log_summaries()
    finally:
        event(logging.INFO, "shutting down")
        server.shutdown()
        event(logging.INFO, "stopped", requests=server.stats.snapshot()["requests"])
    return 0
