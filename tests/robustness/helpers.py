"""Shared pieces of the robustness tests: a raw loopback OSC socket and reply collection."""
from __future__ import annotations

import json
import os
import time

from pythonosc.osc_message_builder import OscMessageBuilder

from bridge.daemon.client import BridgeClient

TERMINAL = ("/bridge/ok", "/bridge/done", "/bridge/error")


def osc(address: str, *args) -> bytes:
    """One OSC message; args are (value, type tag) pairs or plain values (int -> i, str -> s)."""
    b = OscMessageBuilder(address)
    for a in args:
        if isinstance(a, tuple):
            b.add_arg(a[0], a[1])
        elif isinstance(a, bool) or a is None:
            b.add_arg(a)
        elif isinstance(a, int):
            b.add_arg(a, "i")
        elif isinstance(a, float):
            b.add_arg(a, "f")
        elif isinstance(a, bytes):
            b.add_arg(a, "b")
        else:
            b.add_arg(a, "s")
    return b.build().dgram


def request(op: str, rid: int, fields) -> bytes:
    text = fields if isinstance(fields, str) else json.dumps(fields, separators=(",", ":"))
    return osc(f"/bridge/{op}", rid, text)


class Raw:
    """A loopback UDP client that sends arbitrary datagrams and collects replies by id. It completes
    the hello handshake first (handshake=False: a client without one, whose replies are held to
    the reply budget, 10x the bytes it sent)."""

    def __init__(self, server, timeout: float = 10.0, handshake: bool = True):
        self.c = BridgeClient(server.host, server.port, timeout=timeout, hello=False)
        if handshake:
            self.c.handshake()
        self.timeout = timeout
        self.next_ping = 2_000_000_000
        self.stray: list = []

    def close(self):
        self.c.close()

    def send(self, data: bytes) -> None:
        self.c.send_datagram(data)

    def collect(self, rid: int, timeout: float | None = None) -> list[tuple[str, list]]:
        """Messages for `rid` up to and including its terminal reply (TimeoutError if none)."""
        out = [m for m in self.stray if m[1] and m[1][0] == rid]     # arrived while waiting for another id
        self.stray = [m for m in self.stray if not (m[1] and m[1][0] == rid)]
        if out and out[-1][0] in TERMINAL:
            return out
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while time.monotonic() < deadline:
            for address, args in self.c.receive(deadline - time.monotonic()):
                if args and args[0] == rid:
                    out.append((address, args))
                    if address in TERMINAL:
                        return out
                else:
                    self.stray.append((address, args))
        raise TimeoutError(f"no terminal reply to {rid} within the timeout; got {out}")

    def ping(self) -> dict:
        """Ping and wait for the pong: the daemon is up and this client's queue is drained."""
        self.next_ping += 1
        rid = self.next_ping
        self.send(request("ping", rid, {"echo": rid}))
        msgs = self.collect(rid)
        assert msgs[-1][0] == "/bridge/ok", msgs
        return json.loads(msgs[-1][1][1])


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _osc_string(b: bytes) -> bytes:
    b += b"\x00"
    return b + b"\x00" * (-len(b) % 4)


def request_bytes(op: str, rid: int, payload: bytes) -> bytes:
    """/bridge/<op> ,is with the string argument given as raw bytes (invalid UTF-8 allowed)."""
    import struct
    return _osc_string(f"/bridge/{op}".encode()) + _osc_string(b",is") + struct.pack(">i", rid) + _osc_string(payload)
