"""Load and soak against a real daemon on loopback.

load: 8 clients x 1,000 pipelined mixed requests (ping, sample, encode, interpolate, bad requests);
every request gets exactly its own reply, none lost, none misrouted; the p99 round trip is printed.
soak: 10,000 requests after a 1,000-request warm-up, hostile values, new clients with and without a
handshake, live streams started and stopped among them; the daemon's resident memory grows < 5 %."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bridge.runtime import engine
from bridge.daemon.client import BridgeClient, spawn_server
from bridge.core.notes import Note

from .helpers import rss_kib

CLIENTS, REQUESTS, WINDOW = 8, 1000, 16
SEEDS = 10


@pytest.fixture(scope="module")
def models(tiny_models_dir):
    return [Path(tiny_models_dir) / "mel_2bar", Path(tiny_models_dir) / "drums_2bar"]


@pytest.fixture(scope="module")
def local(models):
    m = engine.load_model(models[0])
    samples = {s: [n.to_row() for n in m.sample(1, temperature=0.9, seed=s)[0]] for s in range(SEEDS)}
    return m, samples


def _plan(client_no: int, n: int) -> list[tuple[str, dict, str]]:
    """(op, fields, expected outcome) - a deterministic mix."""
    out = []
    for i in range(n):
        k = (i * 7 + client_no) % 10
        tag = f"c{client_no}-r{i}"
        pitch = 48 + (client_no * 5 + i) % 36
        if k < 4:
            out.append(("ping", {"echo": tag}, "ok"))
        elif k < 6:
            out.append(("sample", {"model": "mel_2bar", "temperature": 0.9, "seed": i % SEEDS}, "done"))
        elif k == 6:
            out.append(("encode", {"model": "mel_2bar", "notes": [[pitch, 0, 1, 100, 0], [pitch + 3, 1, 1, 90, 0]]}, "ok"))
        elif k == 7:
            out.append(("interpolate", {"model": "drums_2bar", "a": [[36, 0, 0.25]], "b": [[38, 1, 0.25]],
                                        "steps": 3}, "done"))
        elif k == 8:
            out.append(("sample", {"model": "no_such_model", "echo": tag}, "unknown_model"))
        else:
            out.append(("sample", {"model": "mel_2bar", "n": 0}, "bad_request"))
    return out


def _run_client(server, client_no: int, n: int, results: dict, errors: list):
    try:
        plan = _plan(client_no, n)
        with server.client(timeout=60.0) as c:
            sent, replies = [], []
            for op, fields, _ in plan:
                sent.append(c.send(op, fields))
                if len(sent) - len(replies) >= WINDOW:
                    replies.append(c.wait(sent[len(replies)], check=False))
            while len(replies) < len(sent):
                replies.append(c.wait(sent[len(replies)], check=False))
            results[client_no] = (plan, sent, replies, list(c.completed)[1:], list(c.pushed))
    except BaseException as e:  # reported by the main thread
        errors.append((client_no, repr(e)))


def test_eight_clients_a_thousand_mixed_requests_each(models, local):
    m, samples = local
    server = spawn_server(models)
    try:
        results, errors = {}, []
        t0 = time.monotonic()
        threads = [threading.Thread(target=_run_client, args=(server, k, REQUESTS, results, errors))
                   for k in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        wall = time.monotonic() - t0
        assert not errors, errors
        assert sorted(results) == list(range(CLIENTS))
        elapsed = []
        for client_no, (plan, sent, replies, completed, stray) in results.items():
            assert stray == [], stray[:5]                              # nothing misrouted to this client
            assert completed == sent                                   # nothing lost, in request order
            for (op, fields, expect), rid, reply in zip(plan, sent, replies):
                assert reply.id == rid and reply.op == op
                if expect in ("ok", "done"):
                    assert reply.status == expect, (op, fields, reply.error)
                else:
                    assert reply.status == "error" and reply.error[0] == expect, (op, fields, reply)
                if op == "ping":
                    assert reply.data["echo"] == fields["echo"]       # this client's own reply
                elif op == "sample" and expect == "done":
                    assert reply.sequences[0]["notes"] == samples[fields["seed"]]
                elif op == "encode":
                    notes = [Note.from_row(r) for r in fields["notes"]]
                    np.testing.assert_allclose(reply.data["z"], m.encode([notes])[0], atol=1e-6)
                elapsed.append(reply.elapsed)
        ms = np.asarray(elapsed) * 1000.0
        print(f"\nload: {CLIENTS} clients x {REQUESTS} requests in {wall:.1f} s "
              f"({len(ms) / wall:.0f} req/s); round trip p50 {np.percentile(ms, 50):.2f} ms, "
              f"p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.2f} ms (window {WINDOW} per client)")
        with server.client() as c:
            stats = c.request("stats").data
        print("      in the daemon (stats, last 2048 per op): " + ", ".join(
            f"{op} p50 {v['p50_ms']:.2f} / p99 {v['p99_ms']:.2f} ms" for op, v in sorted(stats["ops"].items())
            if op in ("ping", "sample", "encode", "interpolate")))
        assert stats["dropped"] == {}
        assert stats["errors"].get("internal", 0) == 0 and stats["errors"].get("busy", 0) == 0
    finally:
        assert server.stop() == 0


def _soak_batch(server, clients, n: int, start: int) -> None:
    """n requests spread over the persistent clients, plus one short-lived client per 500 requests."""
    for i in range(start, start + n):
        c = clients[i % len(clients)]
        k = i % 5
        if k == 0:
            c.send("sample", model="mel_2bar", temperature=0.5, seed=i)
        elif k == 1:
            c.send("encode", model="drums_2bar", notes=[[36, 0, 0.25], [38, (i % 8) * 0.5, 0.25]])
        elif k == 2:
            c.send("interpolate", model="mel_2bar", a=[[60, 0, 1]], b=[[60 + i % 12, 1, 1]], steps=4)
        elif k == 3:
            c.send("ping", echo="x" * (i % 200))
        elif i % 50 == 9:   # hostile values: a bad_request each, nothing kept
            c.send("sample", model="mel_2bar", temperature=10 ** (300 + i % 50), echo=[[[[1.5]]]] * 20)
        else:
            c.send("decode", model="mel_2bar", z=[[0.1 * (i % 7), 0.2, -0.3, 0.4]])
        if len(c._waiting) >= 8:
            c.wait(min(c._waiting), check=False)
        if i % 500 == 499:
            # a new client each time: a handshake, a live stream started and stopped, and a client
            # without a handshake (sessions, challenges, streams and budgets must not pile up)
            with server.client(timeout=30.0) as extra:
                extra.request("sample", model="drums_2bar", n=2, seed=i)
                extra.request("transport", tempo=480.0, beat=0.0, playing=True)
                extra.request("morph", model="mel_2bar", a=[[60, 0, 1]], b=[[67, 0, 1]], steps=2, mode="loop")
                extra.request("stop")
            with BridgeClient(server.host, server.port, hello=False, timeout=30.0) as anon:
                anon.request("ping", echo=i)
    for c in clients:
        while c._waiting:
            c.wait(min(c._waiting), check=False)


def test_soak_memory_stays_flat(models):
    server = spawn_server(models, "--workers", "2")
    clients = [server.client(timeout=60.0) for _ in range(4)]
    try:
        pid = server.proc.pid
        _soak_batch(server, clients, 1000, 0)                 # warm-up: caches, arenas, buffers
        before = rss_kib(pid)
        t0 = time.monotonic()
        _soak_batch(server, clients, 10_000, 1000)
        after = rss_kib(pid)
        growth = (after - before) / before
        print(f"\nsoak: 10,000 requests in {time.monotonic() - t0:.1f} s; daemon RSS {before / 1024:.1f} -> "
              f"{after / 1024:.1f} MiB ({growth * 100:+.2f} %)")
        with clients[0] as c:
            stats = c.request("stats").data
        assert stats["requests"] >= 11_000
        assert set(stats["errors"]) == {"bad_request"} and stats["errors"]["bad_request"] == 11_000 // 50
        assert stats["dropped"] == {} and stats["streams"]["active"] == 0
        assert growth < 0.05
    finally:
        for c in clients:
            c.close()
        assert server.stop() == 0
