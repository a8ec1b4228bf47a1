"""Reply addressing under abuse (a real daemon on loopback).

- A port that did not prove it receives (the hello challenge echoed back) is sent at most 10x the
  bytes its client sent: the amplification a forged source address could buy. Protocol 1.0 sent a
  120-byte trio interpolate request 2.16 MB (18,008x) and a morph loop streamed forever.
- `hello {"reply_port": P}` sends P one small challenge and nothing else until the challenge comes
  back; it never redirects another client's replies (protocol 1.0: every client of the host).
"""
from __future__ import annotations

import select
import socket
import time
from pathlib import Path

import pytest

from bridge.daemon.client import spawn_server

from .helpers import Raw, request

MEL = [[60, 0, 1, 100, 0], [64, 1, 1, 90, 0], [67, 2, 2, 80, 0]]
AMPLIFICATION = 10


@pytest.fixture(scope="module")
def daemon(tiny_models_dir):
    server = spawn_server([Path(tiny_models_dir) / n for n in ("mel_2bar", "trio_16bar")], "--workers", "2",
                          "--limit", "stream_lease_bars=2")
    yield server
    assert server.stop() == 0


def _drain(sock: socket.socket, seconds: float) -> int:
    """Bytes arriving at `sock` within `seconds`."""
    got = 0
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got
        r, _, _ = select.select([sock], [], [], left)
        if r:
            got += len(sock.recv(65535))


def test_amplification_without_a_handshake_is_at_most_10x(daemon):
    raw = Raw(daemon, handshake=False)
    try:
        sent = 0
        heavy = [("interpolate", {"model": "trio_16bar", "a": MEL, "b": MEL, "steps": 64}),
                 ("sample", {"model": "trio_16bar", "n": 32, "temperature": 1.0}),
                 ("palette", {"model": "mel_2bar", "corners": [MEL] * 4, "size": 8}),
                 ("ping", {"echo": "x" * 2000}),
                 ("models", {}), ("stats", {}), ("no_such_op", {})]
        for k in range(3):
            for i, (op, fields) in enumerate(heavy):
                data = request(op, 100 * k + i, fields)
                sent += len(data)
                raw.send(data)
        data = request("transport", 1, {"tempo": 480.0, "beat": 0.0, "playing": True})   # a morph loop too
        raw.send(data)
        sent += len(data)
        data = request("morph", 2, {"model": "trio_16bar", "a": MEL, "b": MEL, "steps": 4, "bars_per_step": 1,
                                    "mode": "loop"})
        raw.send(data)
        sent += len(data)
        received = _drain(raw.c.sock, 4.5)           # the loop runs until its lease ends (2 bars, >= 2 s)
        # the statistics are read once the daemon got through the heavy queue: how long that takes is
        # not what this test measures (on a loaded machine it can be more than the default 10 s)
        with daemon.client(timeout=60.0) as c:
            stats = c.request("stats").data
        ratio = received / sent
        print(f"\namplification without a handshake: sent {sent} B, received {received} B = {ratio:.2f}x "
              f"(bound {AMPLIFICATION}x); replies held back: {stats['dropped'].get('reply_budget', 0)}")
        assert ratio <= AMPLIFICATION
        assert stats["dropped"].get("reply_budget", 0) > 0
    finally:
        raw.close()


def test_the_same_requests_after_a_handshake_are_answered_in_full(daemon):
    raw = Raw(daemon)
    try:
        raw.send(request("interpolate", 7, {"model": "trio_16bar", "a": MEL, "b": MEL, "steps": 64}))
        msgs = raw.collect(7, timeout=60.0)
        assert msgs[-1][0] == "/bridge/done" and len([m for m in msgs if m[0] == "/bridge/seq"]) >= 64
    finally:
        raw.close()


def test_hello_cannot_point_replies_at_a_port_that_did_not_ask(daemon):
    """An attacker says hello with a victim's port and keeps requesting: the victim port gets one
    small challenge per hello and no replies; another client of the host is not redirected."""
    victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    victim.bind(("127.0.0.1", 0))
    attacker = Raw(daemon, handshake=False)
    bystander = Raw(daemon, handshake=False)
    try:
        sent = 0
        data = request("hello", 1, {"reply_port": victim.getsockname()[1]})
        attacker.send(data)
        sent += len(data)
        time.sleep(0.2)
        bystander.send(request("ping", 99, {}))                    # a client of the host that never said hello
        assert bystander.collect(99)[-1][0] == "/bridge/ok"        # answered where it came from
        for i in range(20):
            data = request("interpolate", 10 + i, {"model": "trio_16bar", "a": MEL, "b": MEL, "steps": 64})
            attacker.send(data)
            sent += len(data)
        got = _drain(victim, 3.0)
        print(f"\nhello to a victim port: attacker sent {sent} B, the victim port got {got} B")
        assert 0 < got <= 200                                      # the challenge only
    finally:
        victim.close()
        attacker.close()
        bystander.close()
