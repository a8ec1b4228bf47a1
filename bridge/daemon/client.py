"""A small synchronous client for the latent-bridge daemon (protocol: docs/osc-protocol.md).

    from bridge.daemon.client import BridgeClient
    with BridgeClient("127.0.0.1", 9000) as c:
        reply = c.request("sample", model="mel_2bar", n=4, temperature=0.5, seed=1)
        for seq in reply.sequences:           # dicts: model, index, bars, notes, ...
            print(seq["index"], len(seq["notes"]))
        z = c.request("encode", model="mel_2bar", notes=[[60, 0, 1, 100, 0]]).data["z"]

One UDP socket, bound to an ephemeral port, both sends and receives. The client completes the hello
handshake (hello, then hello with the challenge the daemon sent back) so that its replies are not
held to the reply budget of a client without one, and learns the server's protocol version, models
and limits (`client.server_info`). `token=` adds the daemon's shared secret (`serve --token`) to
every request. Not thread-safe: use one client per thread. An error answer raises `ErrorReply` (a
bridge.core.errors.BridgeError carrying the code the daemon sent).

Protocol 1.2's symbol-free forms (bridge.daemon.typed): `notes_format="numeric"` asks in hello for
/bridge/seq with numeric notes (decoded here into the same dicts as the JSON form), and
`request_typed("transport", 120.0, 8.0, 1, 4, 4)` sends a typed request (its typed ok is decoded
into the result dict).

`spawn_server(...)` starts a daemon in a subprocess and returns its address (tests, benchmarks).
"""
from __future__ import annotations

import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from ..core.errors import BridgeError
from .protocol import DONE, ERROR, OK, PREFIX, SEQ
from .typed import decode_numeric_seq, decode_typed_ok

__all__ = ["BridgeClient", "BridgeError", "BridgeTimeout", "ErrorReply", "Reply", "ServerProcess", "spawn_server"]


class ErrorReply(BridgeError):
    """The daemon answered /bridge/error; `code` is the code it sent, `request_id` the request's."""

    def __init__(self, code: str, message: str, request_id: int | None = None):
        super().__init__(message)
        self.code, self.request_id = code, request_id

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class BridgeTimeout(BridgeError, TimeoutError):
    """No complete reply in time (client side only: the daemon never sends this code)."""

    code = "timeout"


@dataclass
class Reply:
    """The complete answer to one request."""
    id: int
    op: str
    status: str = ""                    # "ok", "done" (after a seq stream) or "error"
    data: dict | None = None            # the /bridge/ok JSON
    sequences: list = field(default_factory=list)   # the /bridge/seq JSONs, parts merged, by index
    error: tuple | None = None          # (code, message)
    count: int | None = None            # the seq count the server announced
    elapsed: float = 0.0                # seconds from send to the terminal message
    _parts: dict = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "done")

    def _add_seq(self, index: int, count: int, obj: dict) -> None:
        self.count = count
        cur = self._parts.get(index)
        if cur is None:
            self._parts[index] = obj
        else:
            cur["notes"].extend(obj.get("notes", []))   # a sequence split over several datagrams

    def _finish(self) -> None:
        self.sequences = [self._parts[i] for i in sorted(self._parts)]


class BridgeClient:
    def __init__(self, host: str = "127.0.0.1", port: int = 9000, timeout: float = 10.0,
                 hello: bool = True, bind_host: str | None = None, token: str | None = None,
                 notes_format: str | None = None):
        """Args:
            host, port: the daemon. timeout: seconds `request` waits by default.
            hello: complete the hello handshake now. bind_host: the local address (default: loopback
                for a loopback daemon, else any). token: the daemon's shared secret.
            notes_format: "numeric" to get /bridge/seq notes as numbers (protocol 1.2), None or "json".
        """
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family, _, _, _, self.server = infos[0]
        if bind_host is None:
            loopback = host in ("localhost",) or self.server[0].startswith("127.") or self.server[0] == "::1"
            bind_host = ("::1" if family == socket.AF_INET6 else "127.0.0.1") if loopback else (
                "::" if family == socket.AF_INET6 else "0.0.0.0")
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        except OSError:
            pass
        self.sock.bind((bind_host, 0))
        self.address = self.sock.getsockname()[:2]
        self.timeout = timeout
        self._next_id = 1
        self._waiting: dict[int, Reply] = {}
        self._sent_at: dict[int, float] = {}
        self._finished: dict[int, Reply] = {}
        self.completed: list[int] = []          # request ids in the order their answers completed
        self.pushed: deque = deque(maxlen=1000)  # (address, args) for ids nobody waits for
        self.server_info: dict | None = None
        self.token = token
        self.notes_format = notes_format
        if hello:
            self.server_info = self.handshake()

    def handshake(self) -> dict:
        """hello, then hello with the challenge that came back: the daemon then sends this socket
        every reply without a budget. Returns the hello reply (a daemon without the handshake,
        protocol 1.0, answers the first hello with it directly)."""
        extra = {"notes_format": self.notes_format} if self.notes_format else {}
        first = self.request("hello", reply_port=self.address[1], **extra)
        info = first.data or {}
        if "challenge" in info:
            info = self.request("hello", reply_port=self.address[1], challenge=info["challenge"], **extra).data
            self.completed.remove(first.id)       # one hello in the order of answers, as before
        return info

    # ---- context manager ----
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.sock.close()

    # ---- low level ----
    def send_message(self, address: str, *args) -> None:
        """Send any OSC message (ints go as int32, floats as float32, str as string, bytes as blob)."""
        b = OscMessageBuilder(address)
        for a in args:
            if isinstance(a, bool) or a is None:
                b.add_arg(a)
            elif isinstance(a, int):
                b.add_arg(a, "i")
            elif isinstance(a, float):
                b.add_arg(a, "f")
            elif isinstance(a, (bytes, bytearray)):
                b.add_arg(bytes(a), "b")
            else:
                b.add_arg(str(a), "s")
        self.send_datagram(b.build().dgram)

    def send_datagram(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def receive(self, timeout: float) -> list[tuple[str, list]]:
        """The OSC messages of the next datagram, [] on timeout."""
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not r:
            return []
        data, _ = self.sock.recvfrom(65535)
        try:
            return [(m.message.address, list(m.message.params)) for m in OscPacket(data).messages]
        except Exception:
            return []

    # ---- requests ----
    def new_id(self) -> int:
        rid = self._next_id
        self._next_id = 1 if rid >= 2 ** 31 - 1 else rid + 1
        return rid

    def send(self, op: str, fields: dict | None = None, **kw) -> int:
        """Send a request without waiting; returns its id (collect with `wait`)."""
        body = dict(fields or {}, **kw)
        if self.token is not None:
            body.setdefault("token", self.token)
        rid = self.new_id()
        self._waiting[rid] = Reply(rid, op)
        self._sent_at[rid] = time.perf_counter()
        self.send_message(f"{PREFIX}{op}", rid, json.dumps(body, separators=(",", ":")))
        return rid

    def send_typed(self, op: str, *args, options: dict | None = None) -> int:
        """Send a request in its typed form (`/bridge/<op> id args... [json]`, bridge.daemon.typed)
        without waiting; `options` (plus the token, if any) go as the trailing JSON object."""
        opts = dict(options or {})
        if self.token is not None:
            opts.setdefault("token", self.token)
        rid = self.new_id()
        self._waiting[rid] = Reply(rid, op)
        self._sent_at[rid] = time.perf_counter()
        tail = (json.dumps(opts, separators=(",", ":")),) if opts else ()
        self.send_message(f"{PREFIX}{op}", rid, *args, *tail)
        return rid

    def request_typed(self, op: str, *args, options: dict | None = None, timeout: float | None = None,
                      check: bool = True) -> Reply:
        """`send_typed` and wait for its answer (a typed ok is decoded into `Reply.data`)."""
        return self.wait(self.send_typed(op, *args, options=options), timeout, check)

    def _dispatch(self, address: str, args: list) -> None:
        rid = args[0] if args and isinstance(args[0], int) else None
        reply = self._waiting.get(rid)
        if reply is None:
            self.pushed.append((address, args))
            return
        try:
            if address == SEQ:
                if len(args) == 4 and isinstance(args[3], str):
                    reply._add_seq(args[1], args[2], json.loads(args[3]))
                else:                                         # notes_format "numeric"
                    _, index, count, obj = decode_numeric_seq(args)
                    reply._add_seq(index, count, obj)
                return
            if address == OK:
                typed = len(args) != 2 or not isinstance(args[1], str)
                reply.status, reply.data = "ok", (decode_typed_ok(reply.op, args[1:]) if typed else json.loads(args[1]))
            elif address == DONE:
                reply.status = "done"
            elif address == ERROR:
                reply.status, reply.error = "error", (args[1], args[2])
            else:
                self.pushed.append((address, args))
                return
        except (IndexError, ValueError, TypeError):
            self.pushed.append((address, args))
            return
        reply._finish()
        reply.elapsed = time.perf_counter() - self._sent_at.pop(rid, time.perf_counter())
        del self._waiting[rid]
        self._finished[rid] = reply
        self.completed.append(rid)

    def pump(self, timeout: float = 0.0) -> bool:
        """Read and dispatch one datagram if one arrives within `timeout`."""
        msgs = self.receive(timeout)
        for address, args in msgs:
            self._dispatch(address, args)
        return bool(msgs)

    def wait(self, rid: int, timeout: float | None = None, check: bool = True) -> Reply:
        """The complete reply to request `rid`; ErrorReply on an error reply (if check)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while rid not in self._finished:
            left = deadline - time.monotonic()
            if left <= 0:
                self._waiting.pop(rid, None)
                self._sent_at.pop(rid, None)
                raise BridgeTimeout(f"no complete reply to request {rid} within "
                                    f"{self.timeout if timeout is None else timeout} s")
            self.pump(left)
        reply = self._finished.pop(rid)
        if check and reply.status == "error":
            raise ErrorReply(reply.error[0], reply.error[1], rid)
        return reply

    def request(self, op: str, fields: dict | None = None, *, timeout: float | None = None,
                check: bool = True, **kw) -> Reply:
        """Send /bridge/<op> and wait for its answer (ok, or seq... done, or error)."""
        return self.wait(self.send(op, fields, **kw), timeout, check)


# ---- a daemon in a subprocess ---------------------------------------------------------------------

_READY = re.compile(r"ready on udp://\[?([^\]\s]+?)\]?:(\d+) ")


class ServerProcess:
    """A daemon started by spawn_server; `host`, `port`, `log_lines()`, `stop()`."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.host: str | None = None
        self.port: int | None = None
        self._lines: deque = deque(maxlen=5000)
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self._lines.append(line.rstrip("\n"))
            if not self._ready.is_set():
                m = _READY.search(line)
                if m:
                    self.host, self.port = m.group(1), int(m.group(2))
                    self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float) -> None:
        if not self._ready.wait(timeout) or self.port is None:
            self.stop()
            raise RuntimeError("the daemon did not become ready:\n" + "\n".join(self.log_lines()[-40:]))

    def log_lines(self) -> list[str]:
        return list(self._lines)

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=2.0)
        return self.proc.returncode

    def client(self, **kw) -> BridgeClient:
        return BridgeClient(self.host, self.port, **kw)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def spawn_server(models=(), *args: str, shipped: bool = False, port: int = 0, host: str = "127.0.0.1",
                 timeout: float = 60.0, python: str | None = None, env: dict | None = None) -> ServerProcess:
    """Start `python -m bridge serve` serving the packages in `models` on a free port (by default)
    and wait for its ready line. `args` are more serve options."""
    cmd = [python or sys.executable, "-m", "bridge", "serve", "--host", host, "--port", str(port)]
    for m in models:
        cmd += ["--models", str(m)]
    if not shipped:
        cmd.append("--no-default-models")
    cmd += list(args)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    full_env = dict(os.environ, **(env or {}))
    full_env["PYTHONPATH"] = root + (os.pathsep + full_env["PYTHONPATH"] if full_env.get("PYTHONPATH") else "")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=full_env, cwd=root)
    server = ServerProcess(proc)
    server.wait_ready(timeout)
    return server
