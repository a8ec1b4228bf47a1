"""Daemon start and stop: signals, binding rules, ports, log formats."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge.daemon.client import BridgeClient, BridgeError, spawn_server

ROOT = Path(__file__).resolve().parents[3]


def _run(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "bridge", "serve", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_answers_the_running_request(tiny_models_dir, sig):
    srv = spawn_server([Path(tiny_models_dir) / "mel_16bar"])
    with srv.client() as c:
        ids = [c.send("sample", model="mel_16bar", n=8, temperature=0.5, seed=i) for i in range(6)]
        time.sleep(0.2)
        srv.proc.send_signal(sig)
        replies = [c.wait(rid, timeout=30, check=False) for rid in ids]
        assert replies[0].status == "done"          # it was running: it finishes
        assert all(r.status == "done" or r.error[0] == "busy" for r in replies)
    assert srv.proc.wait(15) == 0
    srv.stop()
    log = srv.log_lines()
    assert any("shutting down" in line for line in log)
    assert "msg=stopped" in log[-1]
    assert not any("Traceback" in line or "level=ERROR" in line for line in log)


def test_remote_bind_needs_allow_remote():
    r = _run("--host", "0.0.0.0", "--port", "0", "--no-default-models")
    assert r.returncode == 2
    assert "not a loopback address" in r.stderr and "--allow-remote" in r.stderr
    assert "ready on" not in r.stderr
    r = _run("--host", "0.0.0.0", "--port", "0", "--no-default-models", "--allow-remote")
    assert r.returncode == 2 and "--allow-remote needs --token" in r.stderr and "ready on" not in r.stderr
    srv = spawn_server((), "--allow-remote", "--token", "correct-horse-battery", host="0.0.0.0")
    try:
        log = "\n".join(srv.log_lines())
        assert "level=WARNING" in log and "token" in log
        assert srv.host == "0.0.0.0"
        with BridgeClient("127.0.0.1", srv.port, token="correct-horse-battery") as c:
            assert c.request("ping").ok
        for token in (None, "wrong-horse-battery"):      # every request must carry the secret
            with pytest.raises(BridgeError) as e:
                BridgeClient("127.0.0.1", srv.port, token=token, timeout=5)
            assert e.value.code == "bad_request" and "token" in e.value.message
    finally:
        assert srv.stop() == 0


def test_busy_port_and_missing_models_dir(tmp_path):
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        r = _run("--port", str(taken.getsockname()[1]), "--no-default-models", "--models", str(tmp_path / "none"),
                 "--log-format", "json")
    finally:
        taken.close()
    assert r.returncode == 1
    records = [json.loads(line) for line in r.stderr.splitlines()]
    assert any(rec["msg"] == "no model package found" and rec["path"].endswith("none") for rec in records)
    assert any(rec["msg"].startswith("cannot bind udp") and rec["level"] == "ERROR" for rec in records)


def test_json_log_ready_record(tiny_models_dir):
    srv = spawn_server([Path(tiny_models_dir) / "drums_2bar"], "--log-format", "json")
    try:
        records = [json.loads(line) for line in srv.log_lines()]
        ready = [r for r in records if r["msg"].startswith("ready on")]
        assert len(ready) == 1
        assert ready[0]["port"] == srv.port and ready[0]["models"] == ["drums_2bar"]
        assert ready[0]["msg"] == f"ready on udp://127.0.0.1:{srv.port} with models: drums_2bar"
    finally:
        assert srv.stop() == 0


def test_bad_limit_and_ops_module_are_rejected():
    r = _run("--no-default-models", "--limit", "max_bananas=3")
    assert r.returncode == 2 and "--limit takes NAME=VALUE" in r.stderr
    r = _run("--no-default-models", "--port", "0", "--ops-module", "no_such_module_xyz")
    assert r.returncode == 2 and "no_such_module_xyz" in r.stderr


def test_in_process_server_evicts_idle_sessions_and_closes_them():
    from bridge.daemon.server import BridgeServer
    server = BridgeServer({}, port=0, max_sessions=2)
    host, port = server.start()
    closed = []
    clients = [BridgeClient(host, port, timeout=5) for _ in range(2)]
    try:
        for s in server.sessions():
            s.on_close(lambda sess: closed.append(sess.key))
        first = clients[0].address
        assert clients[1].request("ping").ok          # the first client is now the least recently used
        clients.append(BridgeClient(host, port, timeout=5))
        assert clients[2].request("ping").ok
        keys = [s.key for s in server.sessions()]
        assert len(keys) == 2 and tuple(clients[2].address) in keys
        assert tuple(first) in closed                # the least recently used session went first
        assert clients[0].request("ping").ok         # an evicted client just gets a new session
    finally:
        for c in clients:
            c.close()
        server.shutdown()
    assert server.sessions() == []


@pytest.mark.parametrize("args, message", [
    (("--port", "70000"), "a UDP port is 1..65535"),          # protocol 1.0 bound 70000 mod 65536 = 4464
    (("--port", "-1"), "a UDP port is 1..65535"),
    (("--port", "ninety"), "a UDP port is an integer"),
    (("--limit", "max_queue=0"), "max_queue must be in 1..10000"),
    (("--limit", "max_n=-5"), "max_n must be in 1..1024"),
    (("--limit", "max_temperature=nan"), "max_temperature must be in"),
    (("--limit", "max_request_bytes=70000"), "max_request_bytes must be in 64..65507"),
    (("--limit", "stream_lease_bars=0"), "stream_lease_bars must be in 1..1024"),
    (("--workers", "0"), "--workers must be an integer 1..64"),
    (("--token", "short"), "--token must be at least 12"),
])
def test_command_line_values_are_validated(args, message):
    r = _run("--no-default-models", *args, timeout=60)
    assert r.returncode == 2 and message in r.stderr, r.stderr[-500:]
    assert "ready on" not in r.stderr


def test_limits_check():
    from bridge.daemon.registry import LIMIT_RANGES, Limits
    assert Limits().check() == Limits() and set(LIMIT_RANGES) == {f for f in Limits().to_dict()}
    with pytest.raises(ValueError, match="max_queue"):
        Limits(max_queue=0).check()
