"""Helpers for the live tests: tiny packages with directions, a simulated Live transport, a
timestamping OSC receiver."""
from __future__ import annotations

import json
import math
import shutil
import threading
import time
from pathlib import Path

import numpy as np

from bridge.daemon.client import BridgeClient


def packages_with_directions(tiny_models_dir, dest: Path, names=("mel_2bar", "drums_2bar", "mel_16bar")) -> Path:
    """Copies of the tiny packages with a few fixed directions (random-weight models: the vectors
    only need the right size)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copytree(Path(tiny_models_dir) / name, dest / name)
        path = dest / name / "model.json"
        info = json.loads(path.read_text())
        rng = np.random.default_rng(7)
        dirs = []
        for dname in ("note_density", "pc1", "pc2"):
            v = rng.standard_normal(info["z_size"]).astype(np.float32)
            dirs.append({"name": dname, "kind": "attribute" if dname == "note_density" else "pca",
                         "vector": [float(x) for x in v], "effect": {"per_unit": {}}})
        info["directions"] = dirs
        info["attributes"] = {"note_density": {"vector": dirs[0]["vector"], "effect": {}}}
        path.write_text(json.dumps(info))
    return dest


class LiveSim:
    """A Live set as seen by the daemon: a song position at `tempo`, sent as `transport` messages
    `per_beat` times per beat from its own thread, plus a receiver that timestamps every reply."""

    def __init__(self, server, tempo: float, start_beat: float = 0.0, per_beat: int = 8):
        self.client = server.client(timeout=20.0)
        self.tempo, self.per_beat = tempo, per_beat
        self.t0 = time.monotonic()
        self.beat0 = start_beat
        self.received: list[tuple[float, str, list]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ids = 1_000_000
        self._threads = [threading.Thread(target=self._send_transport, daemon=True),
                         threading.Thread(target=self._receive, daemon=True)]
        self.send_transport()       # the first position before any request that needs it
        for t in self._threads:
            t.start()

    # the song clock
    def beat_at(self, t: float) -> float:
        return self.beat0 + (t - self.t0) * self.tempo / 60.0

    def time_of_beat(self, beat: float) -> float:
        return self.t0 + (beat - self.beat0) * 60.0 / self.tempo

    def bar_now(self) -> int:
        return int(math.floor(self.beat_at(time.monotonic()) / 4))

    def send_transport(self) -> None:
        self._ids += 1
        beat = self.beat_at(time.monotonic())
        self.client.send_message("/bridge/transport", self._ids, json.dumps(
            {"tempo": self.tempo, "beat": beat, "playing": True, "numerator": 4, "denominator": 4}))

    def _send_transport(self) -> None:
        period = 60.0 / self.tempo / self.per_beat
        while not self._stop.wait(period):
            self.send_transport()

    def _receive(self) -> None:
        while not self._stop.is_set():
            msgs = self.client.receive(0.05)
            now = time.monotonic()
            with self._lock:
                for address, args in msgs:
                    self.received.append((now, address, args))

    # requests
    def send(self, op: str, **fields) -> tuple[int, float]:
        rid = self.client.new_id()
        at = time.monotonic()
        self.client.send_message(f"/bridge/{op}", rid, json.dumps(fields))
        return rid, at

    def replies(self, rid: int, address: str | None = None) -> list[tuple[float, str, list]]:
        with self._lock:
            return [r for r in self.received if r[2] and r[2][0] == rid and (address is None or r[1] == address)]

    def seqs(self, rid: int) -> list[tuple[float, dict]]:
        return [(t, json.loads(args[3])) for t, a, args in self.replies(rid, "/bridge/seq")]

    def wait_for(self, pred, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.01)
        return pred()

    def ok(self, rid: int, timeout: float = 10.0) -> dict:
        assert self.wait_for(lambda: any(a in ("/bridge/ok", "/bridge/error") for _, a, _ in self.replies(rid)),
                             timeout), f"no reply to request {rid}"
        for _, a, args in self.replies(rid):
            if a == "/bridge/error":
                raise AssertionError(f"request {rid} failed: {args[1:]}")
            if a == "/bridge/ok":
                return json.loads(args[1])

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2.0)
        self.client.close()


def percentile(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


__all__ = ["BridgeClient", "LiveSim", "packages_with_directions", "percentile"]
