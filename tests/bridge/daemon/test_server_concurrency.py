"""Many clients at once: 8 clients x 200 pipelined requests (pings and small model ops).

Every reply must reach the client that asked, carry the right content, and each client's replies
must complete in the order it sent the requests."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from bridge.runtime import engine
from bridge.daemon.client import spawn_server
from bridge.core.notes import Note

CLIENTS, REQUESTS, WINDOW = 8, 200, 8


@pytest.fixture(scope="module")
def srv(tiny_models_dir):
    server = spawn_server([Path(tiny_models_dir) / "mel_2bar", Path(tiny_models_dir) / "drums_2bar"],
                          "--workers", "2")
    yield server
    assert server.stop() == 0


def _plan(client_no: int) -> list[tuple[str, dict]]:
    out = []
    for i in range(REQUESTS):
        kind = i % 5
        tag = f"c{client_no}-r{i}"
        if kind in (0, 1, 3):
            out.append(("ping", {"echo": tag}))
        elif kind == 2:
            out.append(("sample", {"model": "mel_2bar", "n": 1, "temperature": 0.8, "seed": client_no * 1000 + i}))
        else:
            pitch = 48 + (client_no * 7 + i) % 36
            out.append(("encode", {"model": "mel_2bar", "notes": [[pitch, 0, 1, 100, 0], [pitch + 2, 1, 2, 90, 0]]}))
    return out


def test_eight_clients_two_hundred_requests_each(srv, tiny_models_dir):
    m = engine.load_model(Path(tiny_models_dir) / "mel_2bar")
    results: dict[int, list] = {}
    errors: list = []

    def run(client_no: int):
        try:
            plan = _plan(client_no)
            with srv.client(timeout=30.0) as c:
                sent, replies = [], []
                for op, fields in plan:
                    sent.append(c.send(op, fields))
                    if len(sent) - len(replies) >= WINDOW:
                        replies.append(c.wait(sent[len(replies)]))
                while len(replies) < len(sent):
                    replies.append(c.wait(sent[len(replies)]))
                results[client_no] = (plan, sent, replies, list(c.completed), len(c.pushed))
        except BaseException as e:  # surfaced in the main thread
            errors.append((client_no, repr(e)))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sorted(results) == list(range(CLIENTS))
    for client_no, (plan, sent, replies, completed, stray) in results.items():
        assert stray == 0                                   # nothing for anybody else arrived here
        assert completed[1:] == sent                        # after hello: in request order
        for (op, fields), reply in zip(plan, replies):
            assert reply.op == op and reply.ok
            if op == "ping":
                assert reply.data["echo"] == fields["echo"]
            elif op == "sample":
                expected = m.sample(1, temperature=0.8, seed=fields["seed"])[0]
                assert reply.sequences[0]["notes"] == [n.to_row() for n in expected]
            else:
                notes = [Note.from_row(r) for r in fields["notes"]]
                np.testing.assert_allclose(reply.data["z"], m.encode([notes])[0], atol=1e-6)
    with srv.client() as c:
        stats = c.request("stats").data
    assert stats["requests"] >= CLIENTS * (REQUESTS + 1)
    assert stats["errors"] == {} and stats["dropped"] == {}
