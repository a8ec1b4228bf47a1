"""The OSC daemon (protocol: docs/osc-protocol.md): `BridgeServer`, model loading, and the daemon's
command-line options and serve loop (`python -m bridge serve` is bridge.cli.serve).

Threads: one receive thread parses datagrams and queues work, never running a model; a worker pool
runs requests. Each client (source address) has a serial queue, so its replies come back in request
order, while different clients are served in parallel. The ops come from the `OpRegistry` the
server is given (bridge.daemon.registry); without one it serves the core ops (bridge.daemon.ops).
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields as dc_fields, replace
from pathlib import Path
from typing import Callable

from pythonosc.osc_packet import OscPacket
from pythonosc.parsing import osc_types

from ..core.errors import BadRequest, BridgeError, Busy, ModelError, TooLarge, UnknownOp
from ..runtime.engine import load_model
from ..runtime.package import list_models, package_dirs
from .ops import core_registry
from .protocol import INT32_MAX, INT32_MIN, PREFIX, REPLY_ADDRESSES
from .registry import Limits, OpRegistry, Request, Sequences, model_bars
from .session import Session

log = logging.getLogger("bridge.server")

MAX_SESSIONS = 1024
_SUPPORTED_TAGS = set("ihfdsbTFN")     # OSC 1.0 types plus the common 1.1 ones python-osc reads


# ---- structured logging -------------------------------------------------------------------------

def _logfmt_value(v) -> str:
    if isinstance(v, (list, tuple)) and all(isinstance(x, (str, int, float)) for x in v):
        v = ",".join(str(x) for x in v)
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    if s and all(c.isalnum() or c in "._-:/[]" for c in s):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class LogfmtFormatter(logging.Formatter):
    """ts=... level=INFO logger=bridge.server msg="..." key=value ..."""

    def format(self, record):
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        parts = [f"ts={ts}", f"level={record.levelname}", f"logger={record.name}",
                 f"msg={_logfmt_value(record.getMessage())}"]
        for k, v in (getattr(record, "fields", None) or {}).items():
            parts.append(f"{k}={_logfmt_value(v)}")
        if record.exc_info:
            parts.append(f"exc={_logfmt_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg and the record's fields."""

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


def event(level: int, msg: str, **fields) -> None:
    """Log `msg` with structured fields (key=value in logfmt, keys in JSON)."""
    log.log(level, msg, extra={"fields": fields})


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
    __slots__ = ("op", "id", "text", "source", "received")

    def __init__(self, op, request_id, text, source):
        self.op, self.id, self.text, self.source = op, request_id, text, source
        self.received = time.monotonic()


class _Fail:
    """A request refused before it reaches an op; `error` is the BridgeError it is answered with."""
    __slots__ = ("op", "id", "error", "received")

    def __init__(self, op, request_id, error: BridgeError):
        self.op, self.id, self.error = op, request_id, error
        self.received = time.monotonic()


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


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


# ---- the daemon ---------------------------------------------------------------------------------

class BridgeServer:
    """The daemon: a UDP socket, a receive thread, a worker pool, one Session per client.

    Attributes:
        models: name -> loaded Model. ops: the OpRegistry served. limits: the request Limits.
        stats: counters and latencies (the `stats` op). address: (host, port) once started.
    """

    def __init__(self, models: dict, ops: OpRegistry | None = None, *, host: str = "127.0.0.1",
                 port: int = 9000, workers: int | None = None, limits: Limits = Limits(), failed_models=(),
                 max_sessions: int = MAX_SESSIONS):
        """Args:
            models: name -> Model to serve.
            ops: the ops to serve (default: bridge.daemon.ops.core_registry()).
            host, port: the address to bind (port 0: a free one).
            workers: worker threads (default 2..4 by CPU count).
            limits: request limits.
            failed_models: [{source, error}] of models that did not load (the `models` op lists them).
            max_sessions: clients kept; the least recently seen idle ones are evicted beyond it.
        """
        self.models = dict(models)
        self.ops = ops if ops is not None else core_registry()
        self.failed_models = list(failed_models)
        self.host, self.port = host, port
        self.limits = limits
        self.workers = workers or max(2, min(4, os.cpu_count() or 2))
        self.max_sessions = max_sessions
        self.stats = Stats()
        self._sessions: dict[tuple, Session] = {}
        self._host_ports: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._active = 0
        self._idle = threading.Condition()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

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
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="bridge-worker")
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
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._active and time.monotonic() < deadline:
                self._idle.wait(0.05)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for s in self.sessions():   # requests that never started still get an answer
            for item in s.take_pending():
                try:
                    s.fail(item.id, item.error if isinstance(item, _Fail) else Busy("the daemon is shutting down"))
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

    # ---- routing ----
    def reply_address(self, session: Session) -> tuple:
        """Where a session's replies go: its own reply port, its host's, else its source address."""
        if session.reply_port:
            return (session.host, session.reply_port)
        port = self._host_ports.get(session.host)
        if port:
            return (session.host, port)
        return session.key

    def register_reply_port(self, session: Session, port: int | None, scope: str = "host") -> None:
        """Set (or, with None, clear) the reply port of a session, and for scope "host" of every
        client on its host (the `hello` op)."""
        with self._lock:
            session.reply_port = port
            if scope == "host":
                if port is None:
                    self._host_ports.pop(session.host, None)
                else:
                    self._host_ports[session.host] = port
        event(logging.INFO, "reply port registered" if port else "reply port cleared",
              client=session.label, reply_port=port, scope=scope)

    def send_datagram(self, data: bytes, address: tuple) -> bool:
        """Send one datagram; False (counted as a drop) when the OS refuses it."""
        try:
            self._sock.sendto(data, address)
            return True
        except OSError as e:
            self.stats.count_drop("send_failed")
            event(logging.DEBUG, "send failed", to=f"{address[0]}:{address[1]}", error=str(e))
            return False

    def sessions(self) -> list[Session]:
        """The current sessions."""
        with self._lock:
            return list(self._sessions.values())

    def stats_snapshot(self) -> dict:
        """The `stats` op's answer: counters, latencies, sessions, queue, workers, models."""
        snap = self.stats.snapshot()
        sessions = self.sessions()
        snap.update(sessions=len(sessions), queued=sum(s.queued for s in sessions),
                    workers=self.workers, models=sorted(self.models))
        return snap

    def _session(self, source: tuple) -> Session:
        key = tuple(source[:2])
        with self._lock:
            s = self._sessions.get(key)
            if s is not None:
                return s
            s = Session(self, key)
            self._sessions[key] = s
            evicted = []
            if len(self._sessions) > self.max_sessions:
                idle = sorted((x for x in self._sessions.values() if x is not s and x.idle),
                              key=lambda x: x.last_seen)
                for x in idle[:len(self._sessions) - self.max_sessions]:
                    del self._sessions[x.key]
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
                log.exception("datagram handling failed", extra={"fields": {"client": f"{source[0]}:{source[1]}"}})

    def _datagram(self, data: bytes, source: tuple) -> None:
        self.stats.count_datagram()
        messages = None
        problem = None
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
        if problem is None:
            try:
                messages = [(m.message.address, list(m.message.params)) for m in OscPacket(data).messages]
            except Exception as e:
                problem = f"malformed OSC packet: {e}"
                address, rid = _salvage(data)
        if problem is not None:
            if address is not None and address.startswith(PREFIX) and address not in REPLY_ADDRESSES \
                    and rid is not None:
                self._submit(self._session(source), None, _Fail(address[len(PREFIX):], rid, BadRequest(problem)))
            else:
                self.stats.count_drop("malformed")
                event(logging.WARNING, "dropped malformed datagram", client=f"{source[0]}:{source[1]}",
                      bytes=len(data), reason=problem)
            return
        for address, params in messages:
            self._message(address, params, source, len(data))

    def _message(self, address: str, params: list, source: tuple, size: int) -> None:
        client = f"{source[0]}:{source[1]}"
        if address in REPLY_ADDRESSES:
            # a reply sent back to us (a patch looping its output): answering would ping-pong forever
            self.stats.count_drop("reply_address")
            event(logging.DEBUG, "dropped a reply-address message", client=client, address=address)
            return
        rid, well_typed = _request_id(params)
        if rid is None:
            self.stats.count_drop("no_request_id")
            event(logging.WARNING, "dropped a message without an int32 request id", client=client,
                  address=address, args=repr(params)[:200])
            return
        op = address[len(PREFIX):] if address.startswith(PREFIX) else address
        session = self._session(source)
        spec = self.ops.get(op) if address.startswith(PREFIX) else None
        if spec is None:
            item = _Fail(op, rid, UnknownOp(f"no op {address!r}; ops: {', '.join(self.ops.names())}"))
        elif size > self.limits.max_request_bytes:
            item = _Fail(op, rid, TooLarge(f"request of {size} bytes, the limit is {self.limits.max_request_bytes}"))
        elif not well_typed:
            item = _Fail(op, rid, BadRequest(f"the request id must be an int32, got {params[0]!r}"))
        elif len(params) > 2:
            item = _Fail(op, rid, BadRequest(f"a request is (int32 id, JSON object string); got {len(params)} arguments"))
        elif len(params) == 2 and not isinstance(params[1], str):
            item = _Fail(op, rid, BadRequest(f"the second argument must be a JSON object string, "
                                             f"got {type(params[1]).__name__}"))
        else:
            item = _Call(op, rid, params[1] if len(params) == 2 else "{}", tuple(source[:2]))
        self._submit(session, spec, item)

    def _submit(self, session: Session, spec, item) -> None:
        if spec is not None and not spec.serial and isinstance(item, _Call):
            self._schedule(lambda: self._execute(session, item))
            return
        verdict = session.enqueue(item, self.limits.max_queue)
        if verdict is None:
            # the one reply that may overtake earlier ones: the queue is full by definition
            session.fail(item.id, Busy(f"more than {self.limits.max_queue} requests queued "
                                       f"for this client; wait for replies"))
        elif verdict:
            self._schedule(lambda: self._drain(session))

    def _schedule(self, fn) -> None:
        try:
            self._pool.submit(fn)
        except RuntimeError:  # pool already shut down
            pass

    # ---- workers ----
    def _drain(self, session: Session) -> None:
        if session.run_next(self._execute):
            self._schedule(lambda: self._drain(session))

    def _execute(self, session: Session, item) -> None:
        with self._idle:
            self._active += 1
        try:
            self._run(session, item)
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

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
            try:
                fields = json.loads(item.text, parse_constant=_reject_constant)
                if not isinstance(fields, dict):
                    raise ValueError(f"the JSON must be an object, got {type(fields).__name__}")
            except (ValueError, RecursionError) as e:
                status = session.fail(item.id, BadRequest(f"bad JSON: {e}"))
                return
            spec = self.ops.get(item.op)
            request = Request(self, item.op, item.id, fields, item.source)
            try:
                result = spec.handler(session, request)
                if isinstance(result, dict):
                    session.ok(item.id, result)
                elif isinstance(result, Sequences):
                    session.sequences(item.id, result.model.name, model_bars(result.model),
                                      result.rows, result.extras)
                elif result is not None:
                    raise TypeError(f"op {item.op!r} returned {type(result).__name__}")
            except Exception as e:
                if not isinstance(e, BridgeError):   # a bug, not a bad request: keep the traceback
                    log.exception("request failed", extra={"fields": {
                        "op": item.op, "id": item.id, "client": session.label}})
                status = session.fail(item.id, e)
        except Exception:  # even the error reply failed: log, never let it reach the pool
            status = "internal"
            log.exception("reply failed", extra={"fields": {"op": item.op, "id": item.id}})
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
        logged and reported, never fatal.
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
        return key, (float(value) if "float" in str(names[key]) else int(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad value for {key}: {value!r}") from None


def configure_parser(p: argparse.ArgumentParser) -> None:
    """Add the daemon's options (address, models, provider, workers, logging, limits, --ops-module)."""
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9000, help="UDP port (default 9000; 0 picks a free one, "
                                                          "printed in the ready line)")
    p.add_argument("--models", nargs="+", action="extend", default=[], metavar="DIR",
                   help="model packages to serve besides the shipped ones: a package dir or a dir of packages")
    p.add_argument("--no-default-models", action="store_true", help="do not load the shipped models")
    p.add_argument("--provider", default="auto", help="onnxruntime provider (default auto)")
    p.add_argument("--workers", type=int, default=None, help="worker threads (default 2..4 by CPU count)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--log-format", default="logfmt", choices=["logfmt", "json"])
    p.add_argument("--allow-remote", action="store_true",
                   help="allow binding a non-loopback address (OSC has no authentication)")
    p.add_argument("--ops-module", action="append", default=[], metavar="MODULE",
                   help="import MODULE and serve the ops it marks with bridge.daemon.registry.op (repeatable)")
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
    if not _is_loopback(args.host):
        if not args.allow_remote:
            event(logging.ERROR, f"refusing to bind {args.host}: not a loopback address; OSC has no "
                                 f"authentication. Pass --allow-remote to do it anyway")
            return 2
        event(logging.WARNING, f"binding {args.host}: anyone who can reach this port can drive the "
                               f"daemon (OSC has no authentication)")
    limits = replace(Limits(), **dict(args.limit)) if args.limit else Limits()
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
    server = BridgeServer(models, ops, host=args.host, port=args.port, workers=args.workers, limits=limits,
                          failed_models=failed)
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
            pass
    finally:
        event(logging.INFO, "shutting down")
        server.shutdown()
        event(logging.INFO, "stopped", requests=server.stats.snapshot()["requests"])
    return 0
