"""bridge.daemon.client without a daemon: reply assembly, errors, timeouts, ids."""
from __future__ import annotations

import json
import socket
import time

import pytest

from bridge.daemon.client import BridgeClient, BridgeError, BridgeTimeout
from bridge.daemon.protocol import MAX_REPLY_BYTES, build_message
from bridge.daemon.session import Session


@pytest.fixture
def silent():
    """A UDP socket that receives requests and never answers."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    yield s
    s.close()


def test_timeout_when_nobody_answers(silent):
    with BridgeClient("127.0.0.1", silent.getsockname()[1], timeout=0.2, hello=False) as c:
        t0 = time.monotonic()
        with pytest.raises(BridgeTimeout):
            c.request("ping")
        assert 0.15 < time.monotonic() - t0 < 2.0
        data, _ = silent.recvfrom(65535)
        assert data.startswith(b"/bridge/ping\x00") and b",is\x00" in data


def test_hello_handshake_is_completed_and_its_reply_kept(silent):
    """hello -> a challenge; hello with the challenge -> the hello reply (protocol 1.1). A daemon
    that answers the first hello directly (protocol 1.0) is accepted too."""
    port = silent.getsockname()[1]
    silent.settimeout(5)
    seen = []

    def answer(handshake: bool):
        data, addr = silent.recvfrom(65535)
        seen.append(data)
        assert b"/bridge/hello" in data and f'"reply_port":{addr[1]}'.encode() in data
        if handshake:
            silent.sendto(build_message("/bridge/ok", (1, json.dumps({"challenge": "c0ffee"}))), addr)
            data, addr = silent.recvfrom(65535)
            seen.append(data)
            assert b'"challenge":"c0ffee"' in data
            silent.sendto(build_message("/bridge/ok", (2, json.dumps({"protocol": "1.1", "session": "s"}))), addr)
        else:
            silent.sendto(build_message("/bridge/ok", (1, json.dumps({"protocol": "1.0"}))), addr)

    import threading
    for handshake, info in ((True, {"protocol": "1.1", "session": "s"}), (False, {"protocol": "1.0"})):
        t = threading.Thread(target=answer, args=(handshake,))
        t.start()
        with BridgeClient("127.0.0.1", port, timeout=5) as c:
            assert c.server_info == info
            assert c.completed == [2 if handshake else 1]      # the handshake counts as one hello
        t.join()


def test_token_goes_into_every_request(silent):
    with BridgeClient("127.0.0.1", silent.getsockname()[1], hello=False, token="s3cret-s3cret") as c:
        c.send("ping", echo=1)
        data, _ = silent.recvfrom(65535)
        assert b'"token":"s3cret-s3cret"' in data


def _feed(c: BridgeClient, address: str, *args):
    c._dispatch(address, list(args))


def test_sequences_split_into_parts_are_merged(silent):
    with BridgeClient("127.0.0.1", silent.getsockname()[1], hello=False) as c:
        rid = c.send("sample")
        rows = [[36 + i % 80, i * 0.25, 0.25, 100, 0] for i in range(9000)]
        session = Session(server=None, key=("127.0.0.1", 1))
        msgs = session.sequence_messages(rid, "mel_2bar", 2, [rows[:10], rows], [{"x": 1}, {"x": 2}])
        assert len(msgs) >= 3
        for args in msgs:
            assert len(build_message("/bridge/seq", args)) <= MAX_REPLY_BYTES
            _feed(c, "/bridge/seq", *args)
        _feed(c, "/bridge/done", rid)
        r = c.wait(rid, timeout=0.1)
        assert r.status == "done" and r.count == 2
        assert [s["index"] for s in r.sequences] == [0, 1]
        assert r.sequences[0]["notes"] == rows[:10] and r.sequences[1]["notes"] == rows
        assert r.sequences[1]["x"] == 2 and r.sequences[1]["parts"] == len(msgs) - 1


def test_error_reply_raises_or_returns(silent):
    with BridgeClient("127.0.0.1", silent.getsockname()[1], hello=False) as c:
        rid = c.send("sample", model="x")
        _feed(c, "/bridge/error", rid, "unknown_model", "no model 'x'")
        with pytest.raises(BridgeError) as e:
            c.wait(rid, timeout=0.1)
        assert (e.value.code, e.value.message, e.value.request_id) == ("unknown_model", "no model 'x'", rid)
        rid = c.send("ping")
        _feed(c, "/bridge/error", rid, "busy", "later")
        r = c.wait(rid, timeout=0.1, check=False)
        assert not r.ok and r.error == ("busy", "later")


def test_unknown_ids_and_addresses_go_to_pushed(silent):
    with BridgeClient("127.0.0.1", silent.getsockname()[1], hello=False) as c:
        _feed(c, "/bridge/seq", 999, 0, 1, "{}")
        rid = c.send("ping")
        _feed(c, "/live/beat", rid, 3)
        _feed(c, "/bridge/ok", rid, "not json")
        assert list(c.pushed) == [("/bridge/seq", [999, 0, 1, "{}"]), ("/live/beat", [rid, 3]),
                                  ("/bridge/ok", [rid, "not json"])]
        _feed(c, "/bridge/ok", rid, '{"pong": true}')
        assert c.wait(rid, timeout=0.1).data == {"pong": True}


def test_ids_wrap_inside_int32(silent):
    with BridgeClient("127.0.0.1", silent.getsockname()[1], hello=False) as c:
        c._next_id = 2 ** 31 - 1
        assert c.new_id() == 2 ** 31 - 1
        assert c.new_id() == 1


def test_build_message_types():
    with pytest.raises(ValueError):
        build_message("/x", (2 ** 31,))
    with pytest.raises(TypeError):
        build_message("/x", ([1, 2],))
    import numpy as np
    from pythonosc.osc_message import OscMessage
    m = OscMessage(build_message("/x", (np.int64(3), 1.5, "s", b"\x01")))
    assert m.params == [3, 1.5, "s", b"\x01"]
