"""The OSC daemon end to end: a real daemon subprocess on loopback, real UDP sockets.

One daemon serves the module (tiny random-weight packages plus a broken one and a test ops module);
replies are compared with the same packages run in this process through bridge.runtime.engine.
"""
from __future__ import annotations

import json
import queue
import re
import select
import shutil
import socket
import struct
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from bridge.runtime import engine
from bridge.daemon.client import BridgeError, spawn_server
from bridge.core.codecs import DRUM_CLASSES
from bridge.core.notes import Note

MODELS = ("mel_2bar", "drums_2bar", "mel_16bar", "trio_16bar")
MELODY = [[60, 0, 1, 100, 0], [62, 1, 0.5, 90, 0], [64, 1.5, 0.5, 80, 0], [67, 2, 2, 100, 0],
          [65, 4, 1, 100, 0], [64, 5, 1, 100, 0], [62, 6, 2, 100, 0]]
MELODY_B = [[72, 0, 0.5, 100, 0], [71, 0.5, 0.5, 100, 0], [69, 1, 1, 100, 0], [48, 3, 1, 100, 0],
            [76, 4, 3, 100, 0]]
BEAT = [[36, 0, 0.25, 100, 0], [42, 0.5, 0.25, 80, 0], [38, 1, 0.25, 100, 0], [42, 1.5, 0.25, 80, 0],
        [36, 2, 0.25, 100, 0], [46, 2.5, 0.25, 80, 0], [38, 3, 0.25, 100, 0], [49, 4, 0.25, 100, 0]]
TEST_OPS = '''
import threading, time
from bridge.daemon import registry as ops
from bridge.daemon.registry import Sequences

@ops.op("test_boom")
def boom(session, request):
    raise RuntimeError("kaboom")

@ops.op("test_push")
def push(session, request):
    n = request.integer("n", 3, 1, 10)
    def later():
        for i in range(n):
            time.sleep(0.01)
            session.send("/test/push", request.id, i)
    session.ok(request.id, {"pushing": n})
    threading.Thread(target=later, daemon=True).start()

@ops.op("test_now", serial=False)
def now(session, request):
    return {"now": True}

@ops.op("test_bigseq")
def bigseq(session, request):
    model = request.model()
    rows = [[36 + i % 60, i * 0.25, 0.25, 1 + i % 127, 0] for i in range(request.integer("rows"))]
    return Sequences(model, [rows])
'''


# ---- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models_dir(tiny_models_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("server_models")
    for name in MODELS:
        shutil.copytree(Path(tiny_models_dir) / name, d / name)
    # one attribute vector so that the attribute op has something to move along
    path = d / "mel_2bar" / "model.json"
    info = json.loads(path.read_text())
    info["attributes"] = {"note_density": {"vector": [0.75] * info["z_size"], "effect": {}}}
    path.write_text(json.dumps(info))
    broken = d / "zz_broken"
    broken.mkdir()
    (broken / "model.json").write_text("{this is not json")
    return d


@pytest.fixture(scope="module")
def srv(models_dir, tmp_path_factory):
    ops_dir = tmp_path_factory.mktemp("ops")
    (ops_dir / "server_test_ops.py").write_text(textwrap.dedent(TEST_OPS))
    server = spawn_server([models_dir], "--ops-module", "server_test_ops", "--limit", "max_queue=16",
                          "--workers", "2", env={"PYTHONPATH": str(ops_dir)})
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def local(models_dir):
    """The same packages loaded in this process: the expected answers."""
    return {name: engine.load_model(models_dir / name) for name in MODELS}


@pytest.fixture
def c(srv):
    client = srv.client(timeout=10.0)
    yield client
    client.close()


def rows(notes):
    return [n.to_row() for n in notes]


def collect(sock_or_client, until=("/bridge/ok", "/bridge/done", "/bridge/error"), timeout=3.0):
    """Messages received until one with an address in `until` (or the timeout)."""
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msgs = sock_or_client.receive(deadline - time.monotonic())
        out.extend(msgs)
        if any(a in until for a, _ in msgs):
            break
    return out


def check_rows(seq, model):
    ntracks = len(model.info["tracks"])
    for row in seq["notes"]:
        assert len(row) == 5
        pitch, start, dur, vel, track = row
        assert isinstance(pitch, int) and 0 <= pitch <= 127
        assert 0 <= start < model.bars * 4 and dur > 0 and start + dur <= model.bars * 4 + 1e-9
        assert 1 <= vel <= 127 and 0 <= track < ntracks


# ---- daemon start -----------------------------------------------------------------------------------

def test_ready_line_models_and_failed_package(srv, c, models_dir):
    ready = [line for line in srv.log_lines() if "ready on udp://" in line]
    assert len(ready) == 1
    assert f"ready on udp://127.0.0.1:{srv.port} with models: drums_2bar, mel_16bar, mel_2bar, trio_16bar" in ready[0]
    assert any("model failed to load" in line and "zz_broken" in line for line in srv.log_lines())
    info = c.server_info
    assert info["protocol"] == "1.2" and info["server"] == "latent-bridge" and len(info["session"]) == 16
    assert info["reply_to"] == f"127.0.0.1:{c.address[1]}"
    assert set(MODELS) <= set(info["models"])
    assert {"ping", "hello", "models", "stats", "sample", "encode", "decode", "reconstruct", "interpolate",
            "attribute", "palette", "variations", "test_boom"} <= set(info["ops"])
    assert info["limits"]["max_queue"] == 16 and info["limits"]["max_steps"] == 64
    models = {m["name"]: m for m in c.request("models").data["models"]}
    assert set(models) == set(MODELS)
    assert models["mel_2bar"]["bars"] == 2 and models["trio_16bar"]["bars"] == 16
    assert models["trio_16bar"]["kind"] == "trio"
    assert [t["codec"] for t in models["trio_16bar"]["tracks"]] == ["melody", "melody", "drums"]
    assert models["mel_2bar"]["attributes"] == ["note_density"]
    failed = c.request("models").data["failed"]
    assert len(failed) == 1 and failed[0]["source"] == "zz_broken"
    text = json.dumps(failed)
    assert "zz_broken/model.json" in text and str(models_dir) not in text and "/tmp" not in text   # no absolute path


# ---- every op -----------------------------------------------------------------------------------------

def test_ping_echo(c):
    r = c.request("ping", echo={"x": [1, 2]})
    assert r.status == "ok" and r.data["pong"] is True and r.data["echo"] == {"x": [1, 2]}


@pytest.mark.parametrize("name", MODELS)
def test_sample_matches_the_runtime(c, local, name):
    r = c.request("sample", model=name, n=3, temperature=0.7, seed=11)
    assert r.status == "done" and r.count == 3
    assert [s["index"] for s in r.sequences] == [0, 1, 2]
    expected = local[name].sample(3, temperature=0.7, seed=11)
    for s, e in zip(r.sequences, expected):
        assert s["model"] == name and s["bars"] == local[name].bars
        assert s["part"] == 0 and s["parts"] == 1
        assert s["notes"] == rows(e)
        check_rows(s, local[name])


def test_sample_defaults_and_seed_reproducibility(c):
    a = c.request("sample", model="mel_2bar", seed=5)
    b = c.request("sample", model="mel_2bar", seed=5)
    assert len(a.sequences) == 1 and a.sequences == b.sequences


def test_encode_decode_reconstruct(c, local):
    m = local["mel_2bar"]
    notes = [Note.from_row(r) for r in MELODY]
    z = c.request("encode", model="mel_2bar", notes=MELODY).data["z"]
    assert len(z) == m.z_size
    np.testing.assert_allclose(z, m.encode([notes])[0], rtol=1e-6, atol=1e-6)
    assert np.asarray(z, dtype=np.float32).tolist() == np.asarray(m.encode([notes])[0]).tolist()  # exact float32
    d = c.request("decode", model="mel_2bar", z=z)
    assert d.count == 1 and d.sequences[0]["notes"] == rows(m.decode(np.asarray(z, np.float32))[0])
    batch = c.request("decode", model="mel_2bar", z=[z, [0.0] * m.z_size], temperature=0.0)
    assert batch.count == 2 and batch.sequences[0]["notes"] == d.sequences[0]["notes"]
    rec = c.request("reconstruct", model="mel_2bar", notes=MELODY)
    assert rec.sequences[0]["notes"] == d.sequences[0]["notes"]
    hot = c.request("decode", model="mel_2bar", z=z, temperature=1.0, seed=3)
    assert hot.sequences[0]["notes"] == rows(m.decode(np.asarray(z, np.float32), 1.0, 3)[0])


def test_encode_drums_and_trio_tracks(c, local):
    d = c.request("reconstruct", model="drums_2bar", notes=BEAT)
    first_pitches = {ps[0] for _, ps in DRUM_CLASSES}
    assert all(r[0] in first_pitches and r[4] == 0 for r in d.sequences[0]["notes"])
    zd = c.request("encode", model="drums_2bar", notes=BEAT).data["z"]
    beat = [Note.from_row(r, is_drum=True) for r in BEAT]
    np.testing.assert_allclose(zd, local["drums_2bar"].encode([beat])[0], atol=1e-6)
    trio = [[60, 0, 2, 100, 0], [36, 0, 4, 100, 1], [36, 0, 0.25, 100, 2], [38, 1, 0.25, 100, 2]]
    t = c.request("reconstruct", model="trio_16bar", notes=trio)
    assert t.sequences[0]["bars"] == 16
    for row in t.sequences[0]["notes"]:
        if row[4] == 2:
            assert row[0] in first_pitches
    with pytest.raises(BridgeError) as e:
        c.request("encode", model="trio_16bar", notes=[[60, 0, 1, 100, 3]])
    assert e.value.code == "bad_request" and "track 3" in e.value.message
    with pytest.raises(BridgeError) as e:
        c.request("encode", model="mel_2bar", notes=[[60, 0, 1, 100, 1]])
    assert e.value.code == "bad_request"


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_interpolate_ends_are_reconstructions(c, local, method):
    r = c.request("interpolate", model="mel_2bar", a=MELODY, b=MELODY_B, steps=5, method=method)
    assert r.count == 5 and [s["index"] for s in r.sequences] == list(range(5))
    assert [s["t"] for s in r.sequences] == [0.0, 0.25, 0.5, 0.75, 1.0]
    ra = c.request("reconstruct", model="mel_2bar", notes=MELODY).sequences[0]["notes"]
    rb = c.request("reconstruct", model="mel_2bar", notes=MELODY_B).sequences[0]["notes"]
    assert r.sequences[0]["notes"] == ra and r.sequences[-1]["notes"] == rb
    m = local["mel_2bar"]
    expected = m.interpolate([Note.from_row(x) for x in MELODY], [Note.from_row(x) for x in MELODY_B],
                             steps=5, method=method)
    assert [s["notes"] for s in r.sequences] == [rows(e) for e in expected]


def test_attribute(c, local):
    m = local["mel_2bar"]
    z = c.request("encode", model="mel_2bar", notes=MELODY).data["z"]
    r = c.request("attribute", model="mel_2bar", z=z, attribute="note_density", amount=2.0)
    moved = np.asarray(z, np.float32) + np.float32(2.0) * np.float32(0.75)
    assert r.count == 1 and r.sequences[0]["attribute"] == "note_density" and r.sequences[0]["amount"] == 2.0
    assert r.sequences[0]["notes"] == rows(m.decode(moved)[0])
    same = c.request("attribute", model="mel_2bar", notes=MELODY, attribute="note_density", amount=0)
    assert same.sequences[0]["notes"] == c.request("reconstruct", model="mel_2bar", notes=MELODY).sequences[0]["notes"]
    with pytest.raises(BridgeError) as e:
        c.request("attribute", model="mel_2bar", z=z, attribute="swing")
    assert e.value.code == "bad_request" and "note_density" in e.value.message
    with pytest.raises(BridgeError) as e:
        c.request("attribute", model="mel_2bar", attribute="note_density")
    assert e.value.code == "bad_request"


def test_palette_row_major(c, local):
    corners = [MELODY, MELODY_B, MELODY[:3], MELODY_B[2:]]
    r = c.request("palette", model="mel_2bar", corners=corners, size=3)
    assert r.count == 9
    assert [(s["row"], s["col"]) for s in r.sequences] == [(i // 3, i % 3) for i in range(9)]
    rec = [c.request("reconstruct", model="mel_2bar", notes=k).sequences[0]["notes"] for k in corners]
    assert [r.sequences[i]["notes"] for i in (0, 2, 6, 8)] == rec
    m = local["mel_2bar"]
    expected = m.palette([[Note.from_row(x) for x in k] for k in corners], size=3)
    assert [s["notes"] for s in r.sequences] == [rows(e) for e in expected]
    wide = c.request("palette", model="mel_2bar", corners=corners, size=[2, 4])
    assert [(s["row"], s["col"]) for s in wide.sequences][-1] == (1, 3) and wide.count == 8


def test_variations(c, local):
    r = c.request("variations", model="mel_2bar", notes=MELODY, n=4, spread=0.8, seed=9)
    again = c.request("variations", model="mel_2bar", notes=MELODY, n=4, spread=0.8, seed=9)
    assert r.count == 4 and r.sequences == again.sequences
    flat = c.request("variations", model="mel_2bar", notes=MELODY, n=3, spread=0.0, seed=1)
    rec = c.request("reconstruct", model="mel_2bar", notes=MELODY).sequences[0]["notes"]
    assert all(s["notes"] == rec for s in flat.sequences)


def test_stats_counts_requests(c):
    c.request("ping")
    s = c.request("stats").data
    assert s["requests"] >= 1 and s["ops"]["ping"]["count"] >= 1 and s["sessions"] >= 1
    assert set(s) >= {"uptime_s", "datagrams", "errors", "dropped", "workers", "models"}


def test_big_sequence_is_split_into_parts_and_merged(c):
    r = c.request("test_bigseq", model="mel_2bar", rows=9000)
    assert r.count == 1 and len(r.sequences) == 1
    notes = r.sequences[0]["notes"]
    assert len(notes) == 9000 and notes[1234] == [36 + 1234 % 60, 1234 * 0.25, 0.25, 1 + 1234 % 127, 0]
    assert r.sequences[0]["parts"] >= 2


# ---- errors --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op,fields,code,needle", [
    ("sample", {"model": "nope"}, "unknown_model", "nope"),
    ("sample", {}, "bad_request", "'model' is required"),
    ("sample", {"model": "mel_2bar", "n": "3"}, "bad_request", "'n'"),
    ("sample", {"model": "mel_2bar", "n": 0}, "bad_request", "'n'"),
    ("sample", {"model": "mel_2bar", "n": 33}, "too_large", "'n'"),
    ("sample", {"model": "mel_2bar", "temperature": "hot"}, "bad_request", "temperature"),
    ("sample", {"model": "mel_2bar", "temperature": -1}, "bad_request", "temperature"),
    ("sample", {"model": "mel_2bar", "seed": -4}, "bad_request", "seed"),
    ("sample", {"model": "mel_2bar", "seed": 1.5}, "bad_request", "seed"),
    ("sample", {"model": 7}, "bad_request", "'model'"),
    ("encode", {"model": "mel_2bar"}, "bad_request", "'notes' is required"),
    ("encode", {"model": "mel_2bar", "notes": "C4"}, "bad_request", "'notes'"),
    ("encode", {"model": "mel_2bar", "notes": [[60, 0]]}, "bad_request", "notes'[0]"),
    ("encode", {"model": "mel_2bar", "notes": [[60, 0, 1, 100, "lead"]]}, "bad_request", "track"),
    ("encode", {"model": "mel_2bar", "notes": [[160, 0, 1]]}, "bad_request", "pitch"),
    ("encode", {"model": "mel_2bar", "notes": [[60, 0, -1]]}, "bad_request", "duration"),
    ("encode", {"model": "mel_2bar", "notes": [[60, 0, 1]] * 4097}, "too_large", "4096"),
    ("decode", {"model": "mel_2bar", "z": [0.0, 1.0]}, "bad_request", "4 finite numbers"),
    ("decode", {"model": "mel_2bar", "z": [0, 1, 2, "x"]}, "bad_request", "'z'"),
    ("decode", {"model": "mel_2bar", "z": [0, 1, 2, 1e300]}, "bad_request", "float32"),
    ("decode", {"model": "mel_2bar", "z": [[0, 0, 0, 0]] * 33}, "too_large", "33"),
    ("interpolate", {"model": "mel_2bar", "a": MELODY, "b": MELODY, "steps": 65}, "too_large", "steps"),
    ("interpolate", {"model": "mel_2bar", "a": MELODY, "b": MELODY, "steps": 1}, "bad_request", "steps"),
    ("interpolate", {"model": "mel_2bar", "a": MELODY}, "bad_request", "'b'"),
    ("interpolate", {"model": "mel_2bar", "a": MELODY, "b": MELODY, "method": "cubic"}, "bad_request", "method"),
    ("palette", {"model": "mel_2bar", "corners": [MELODY] * 3}, "bad_request", "4 note lists"),
    ("palette", {"model": "mel_2bar", "corners": [MELODY] * 4, "size": 9}, "too_large", "8"),
    ("palette", {"model": "mel_2bar", "corners": [MELODY] * 4, "size": 1}, "bad_request", "2x2"),
    ("palette", {"model": "mel_2bar", "corners": [MELODY] * 4, "size": "big"}, "bad_request", "size"),
    ("variations", {"model": "mel_2bar", "notes": MELODY, "spread": -1}, "bad_request", "spread"),
    ("variations", {"model": "mel_2bar", "notes": MELODY, "n": 100}, "too_large", "'n'"),
    ("hello", {"reply_port": 70000}, "bad_request", "reply_port"),
    ("no_such_op", {}, "unknown_op", "no_such_op"),
    ("test_boom", {}, "internal", "kaboom"),
])
def test_error_replies(c, op, fields, code, needle):
    r = c.request(op, fields, check=False)
    assert r.status == "error" and r.error[0] == code, r.error
    assert needle in r.error[1]


def test_bad_json_and_non_object_json(c):
    for text, needle in [("{not json", "bad JSON"), ("[1, 2]", "object"), ('"hi"', "object"),
                         ('{"model": NaN}', "NaN"), ('{"x": Infinity}', "Infinity"), ("", "bad JSON"),
                         ("[" * 50000, "bad JSON")]:
        rid = c.new_id()
        c.send_message("/bridge/sample", rid, text)
        msgs = collect(c)
        assert msgs[-1][0] == "/bridge/error" and msgs[-1][1][:2] == [rid, "bad_request"], (text, msgs)
        assert needle in msgs[-1][1][2]


def test_huge_payload_is_too_large(c):
    r = c.request("encode", model="mel_2bar", notes=MELODY, padding="x" * 61000, check=False)
    assert r.error[0] == "too_large" and "60000" in r.error[1]
    assert c.request("ping").ok


@pytest.mark.parametrize("args,reply", [
    ((7.0, "{}"), [7, "bad_request"]),           # a float id still names the request
    ((8, 3), [8, "bad_request"]),                 # the JSON argument has the wrong type
    ((9, "{}", "extra"), [9, "bad_request"]),     # one argument too many
    ((10,), None),                                 # no JSON: the fields default to {}
])
def test_malformed_arguments(c, args, reply):
    c.send_message("/bridge/ping", *args)
    msgs = collect(c)
    if reply is None:
        assert msgs[-1][0] == "/bridge/ok" and msgs[-1][1][0] == args[0]
    else:
        assert msgs[-1][0] == "/bridge/error" and msgs[-1][1][:2] == reply


def test_malformed_datagrams_never_crash(c):
    # unknown type tag: the id is recovered from the raw bytes
    c.send_datagram(b"/bridge/ping\x00\x00\x00\x00,iX\x00" + struct.pack(">i", 77))
    msgs = collect(c)
    assert msgs[-1][0] == "/bridge/error" and msgs[-1][1][:2] == [77, "bad_request"]
    assert "type tag" in msgs[-1][1][2]
    # truncated int: recoverable address, no id -> dropped
    for junk in [b"/bridge/ping\x00\x00\x00\x00,is\x00\x00\x01", b"\x00\x01\x02", b"garbage!",
                 b"#bundle\x00\x00\x00", b"/bridge/ping\x00\x00\x00\x00,s\x00\x00abc\x00",
                 b"/bridge/ping\x00\x00\x00\x00\xff\xfe\x00\x00", b""]:
        c.send_datagram(junk)
    c.send_message("/bridge/ping")            # no id at all: dropped
    c.send_message("/bridge/ping", "1", "{}")  # id as a string: dropped
    c.send_message("/bridge/ok", 5, "{}")     # a reply sent back to the daemon: dropped, no ping-pong
    c.send_message("/elsewhere", 6, "{}")      # outside /bridge/: unknown_op
    msgs = collect(c)
    assert [m for m in msgs if m[1][:1] != [6]] == []
    assert msgs[-1][1][:2] == [6, "unknown_op"]
    assert c.request("ping").ok
    dropped = c.request("stats").data["dropped"]
    assert dropped.get("malformed", 0) >= 5 and dropped.get("no_request_id", 0) >= 2
    assert dropped.get("reply_address", 0) >= 1


def test_bundle_of_requests(c):
    b = OscBundleBuilder(IMMEDIATELY)
    for rid in (501, 502):
        m = OscMessageBuilder("/bridge/ping")
        m.add_arg(rid, "i")
        m.add_arg("{}", "s")
        b.add_content(m.build())
    c.send_datagram(b.build().dgram)
    got = []
    deadline = time.monotonic() + 3
    while len(got) < 2 and time.monotonic() < deadline:
        got += [m for m in c.receive(deadline - time.monotonic())]
    assert [(a, p[0]) for a, p in got] == [("/bridge/ok", 501), ("/bridge/ok", 502)]


def test_busy_when_a_client_queues_too_much(c):
    ids = [c.send("sample", model="mel_16bar", n=4, temperature=0.5, seed=i) for i in range(60)]
    replies = [c.wait(rid, timeout=60, check=False) for rid in ids]
    busy = [r for r in replies if r.status == "error"]
    assert busy and all(r.error[0] == "busy" for r in busy)
    served = [r.id for r in replies if r.status == "done"]
    assert len(served) >= 16 and all(len(r.sequences) == 4 for r in replies if r.status == "done")
    order = [rid for rid in c.completed if rid in set(served)]
    assert order == sorted(order)
    assert c.request("ping").ok


def test_clients_are_served_in_parallel(srv):
    with srv.client() as slow, srv.client() as fast:
        ids = [slow.send("sample", model="mel_16bar", n=4, temperature=0.5, seed=i) for i in range(4)]
        time.sleep(0.02)
        ping = fast.request("ping")
        replies = [slow.wait(rid, timeout=60) for rid in ids]
        assert all(r.status == "done" for r in replies)
        # the ping did not wait behind the other client's queue (it was sent 20 ms after the 4 samples)
        assert 0.02 + ping.elapsed < replies[1].elapsed


def test_non_serial_op_overtakes_queued_requests(c):
    ids = [c.send("sample", model="mel_16bar", n=4, temperature=0.5, seed=i) for i in range(3)]
    now = c.send("test_now")
    assert c.wait(now).data == {"now": True}
    assert c.completed[-1] == now and not set(ids) & set(c.completed)
    assert all(c.wait(rid, timeout=60).status == "done" for rid in ids)


# ---- routing -------------------------------------------------------------------------------------------

def _osc_receive(sock, timeout=3.0):
    r, _, _ = select.select([sock], [], [], timeout)
    if not r:
        return None
    from pythonosc.osc_message import OscMessage
    msg = OscMessage(sock.recv(65535))
    return msg.address, msg.params


def test_hello_binds_only_the_source_that_completed_the_handshake(srv):
    """Replies go to a reply port only for the client that proved it receives there (the challenge
    sent to that port, echoed back); another client on the same host, which never said hello, keeps
    getting its replies at its own source address (protocol 1.0 sent them to the host's hello port)."""
    recv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    recv.bind(("127.0.0.1", 0))
    rport = recv.getsockname()[1]
    a = SimpleUDPClient("127.0.0.1", srv.port)
    b = SimpleUDPClient("127.0.0.1", srv.port)
    other = SimpleUDPClient("127.0.0.1", srv.port)
    try:
        b.send_message("/bridge/ping", [1, "{}"])
        assert next(b.get_messages(3.0)).params[0] == 1
        a.send_message("/bridge/hello", [2, json.dumps({"reply_port": rport})])
        addr, params = _osc_receive(recv)                       # the challenge goes to the claimed port
        challenge = json.loads(params[1])["challenge"]
        assert addr == "/bridge/ok" and params[0] == 2 and len(challenge) == 16
        b.send_message("/bridge/ping", [3, "{}"])              # b is not redirected: no host-wide binding
        assert next(b.get_messages(3.0)).params[0] == 3
        a.send_message("/bridge/hello", [4, json.dumps({"reply_port": rport, "challenge": "0" * 16})])
        assert next(a.get_messages(3.0)).params[:2] == [4, "bad_request"]   # a challenge never issued
        a.send_message("/bridge/hello", [5, json.dumps({"reply_port": rport, "challenge": challenge})])
        addr, params = _osc_receive(recv)
        info = json.loads(params[1])
        assert addr == "/bridge/ok" and params[0] == 5 and info["reply_to"] == f"127.0.0.1:{rport}"
        a.send_message("/bridge/ping", [6, "{}"])
        assert _osc_receive(recv)[1][0] == 6
        b.send_message("/bridge/ping", [7, "{}"])
        assert next(b.get_messages(3.0)).params[0] == 7
        assert _osc_receive(recv, 0.2) is None
        # a request from any port of the host that names the session is that client's (oscsend)
        other.send_message("/bridge/ping", [8, json.dumps({"session": info["session"]})])
        assert _osc_receive(recv)[1][0] == 8
        other.send_message("/bridge/ping", [9, json.dumps({"session": "f" * 16})])
        assert next(other.get_messages(3.0)).params[:2] == [9, "bad_request"]
        other.send_message("/bridge/hello", [10, json.dumps({"challenge": challenge})])   # used up
        assert next(other.get_messages(3.0)).params[:2] == [10, "bad_request"]
    finally:
        recv.close()


def test_push_messages_after_the_reply(c):
    r = c.request("test_push", n=3)
    assert r.data == {"pushing": 3}
    deadline = time.monotonic() + 3
    while len(c.pushed) < 3 and time.monotonic() < deadline:
        c.pump(0.1)
    assert [(a, p) for a, p in c.pushed] == [("/test/push", [r.id, i]) for i in range(3)]


def _free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_liblo_oscsend_and_oscdump(srv):
    """An independent OSC implementation: liblo's oscsend asks, oscdump receives."""
    port = _free_udp_port()
    dump = subprocess.Popen(["oscdump", "-L", str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)

    def send(path, rid, obj):
        subprocess.run(["oscsend", "127.0.0.1", str(srv.port), path, "is", str(rid), json.dumps(obj)],
                       check=True, timeout=10)

    lines, incoming = [], queue.Queue()
    threading.Thread(target=lambda: [incoming.put(x) for x in dump.stdout], daemon=True).start()

    def read_until(pred, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = incoming.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            m = re.search(r"(/\S+) (\w+) ?(.*)$", line.strip())  # oscdump: [timetag] path types args
            if m:
                lines.append(m.groups())
                if pred(*m.groups()):
                    return True
        return False

    def json_arg(args):
        return json.loads(args.split(" ", 1)[1].strip().strip('"').replace('\\"', '"'))

    try:
        # oscdump needs a moment to bind: say hello until the challenge shows up there
        deadline = time.monotonic() + 10
        while True:
            send("/bridge/hello", 1, {"reply_port": port})
            if read_until(lambda path, types, args: path == "/bridge/ok", 0.5) or time.monotonic() > deadline:
                break
        challenge = json_arg(lines[-1][2])["challenge"]
        # every oscsend runs from a new port: the session id ties the requests to the reply port
        send("/bridge/hello", 1, {"reply_port": port, "challenge": challenge})
        assert read_until(lambda path, types, args: path == "/bridge/ok" and '"session"' in args)
        session = json_arg(lines[-1][2])["session"]
        send("/bridge/ping", 2, {"echo": "liblo", "session": session})
        assert read_until(lambda path, types, args: path == "/bridge/ok" and args.startswith("2 "))
        send("/bridge/sample", 3, {"model": "mel_2bar", "n": 2, "seed": 4, "session": session})
        assert read_until(lambda path, types, args: path == "/bridge/done" and args == "3")
        send("/bridge/sample", 4, {"model": "missing", "session": session})
        assert read_until(lambda path, types, args: path == "/bridge/error")
    finally:
        dump.terminate()
        dump.wait(5)
    hello = [x for x in lines if x[0] == "/bridge/ok" and '"session"' in x[2]][0]
    assert hello[:2] == ("/bridge/ok", "is") and hello[2].startswith("1 ") and '"protocol":"1.2"' in hello[2]
    assert ("/bridge/ok", "is") in [x[:2] for x in lines if '"echo":"liblo"' in x[2]]
    seqs = [args.split() for path, types, args in lines if path == "/bridge/seq"]
    assert [x[:3] for x in seqs] == [["3", "0", "2"], ["3", "1", "2"]]
    assert [types for path, types, _ in lines if path == "/bridge/seq"] == ["iiis", "iiis"]
    assert ("/bridge/done", "i", "3") in lines
    assert any(path == "/bridge/error" and args.startswith('4 "unknown_model"') for path, _, args in lines)


# ---- bundles whose element sizes lie ----------------------------------------------------------------

def _ping_message(rid):
    m = OscMessageBuilder("/bridge/ping")
    m.add_arg(rid, "i")
    m.add_arg("{}", "s")
    return m.build().dgram


def test_split_datagram_drops_lying_element_sizes():
    from bridge.daemon.server import split_datagram
    head = b"#bundle\x00" + b"\x00" * 7 + b"\x01"
    good = _ping_message(1)
    drops = {}
    assert split_datagram(head + struct.pack(">i", len(good)) + good, drops) == [good] and drops == {}
    assert split_datagram(head + struct.pack(">i", len(good) + 8) + good, drops) == []
    assert split_datagram(head + struct.pack(">i", len(good)) + good + struct.pack(">i", -4) + good, drops) == [good]
    assert drops == {"bundle_truncated": 1, "bundle_negative_size": 1}


def test_bundle_elements_past_the_end_are_dropped_and_counted(c):
    """python-osc ran an element whose declared size ran past the datagram's end (protocol 1.0),
    and dropped negative sizes without counting them."""
    before = c.request("stats").data["dropped"]
    head = b"#bundle\x00" + b"\x00" * 7 + b"\x01"
    c.send_datagram(head + struct.pack(">i", 1000) + _ping_message(801))            # runs past the end
    c.send_datagram(head + struct.pack(">i", len(_ping_message(802))) + _ping_message(802)
                    + struct.pack(">i", -8) + _ping_message(803))                   # negative size
    msgs = collect(c, timeout=1.0)
    assert [p[0] for a, p in msgs] == [802]                                           # only the honest one
    after = c.request("stats").data["dropped"]
    assert after.get("bundle_truncated", 0) == before.get("bundle_truncated", 0) + 1
    assert after.get("bundle_negative_size", 0) == before.get("bundle_negative_size", 0) + 1
