"""The live ops in protocol 1.2's typed forms (bridge.daemon.typed), against a real daemon (a
`python -m bridge serve` subprocess on loopback, tiny packages with directions) over real UDP: a
song position sent as plain numbers drives a morph whose steps arrive as numeric /bridge/seq; a
knob moved with a typed request answers a typed ok and the moved pattern as numbers, the same
pattern the JSON form gets; bad typed knob input is bad_request.
"""
from __future__ import annotations

import json
import socket
import threading
import time

import numpy as np
import pytest

from bridge.core import latent
from bridge.core.directions import direction_vector
from bridge.core.scale import Scale
from bridge.daemon.client import spawn_server
from bridge.daemon.protocol import build_message
from bridge.daemon.registry import notes_to_rows, z_to_list
from bridge.daemon.typed import decode_numeric_seq
from bridge.live.knobs import KNOB_RANGE
from bridge.runtime.engine import load_model

from live_helpers import packages_with_directions


@pytest.fixture(scope="module")
def live_models(tiny_models_dir, tmp_path_factory):
    return packages_with_directions(tiny_models_dir, tmp_path_factory.mktemp("typed_live_models"), names=("mel_2bar",))


@pytest.fixture(scope="module")
def daemon(live_models):
    server = spawn_server([live_models], "--workers", "2")
    yield server
    assert server.stop() == 0


class TypedSong:
    """A song playing at `tempo` from `beat0`: typed transport requests sent `per_beat` times per
    beat from a thread, each from a socket of its own that names the client's session in the trailing
    JSON (as oscsend would); the replies go to the client's reply port."""

    def __init__(self, server, tempo: float, beat0: float, per_beat: int = 8):
        self.client = server.client(timeout=20.0, notes_format="numeric")
        self.tempo, self.beat0, self.t0 = tempo, beat0, time.monotonic()
        self.address = (server.host, server.port)
        self.options = json.dumps({"session": self.client.server_info["session"]})
        self.sent = 0
        self._stop = threading.Event()
        self.client.request_typed("transport", float(tempo), float(beat0), 1, 4, 4)
        self._thread = threading.Thread(target=self._run, args=(60.0 / tempo / per_beat,), daemon=True)
        self._thread.start()

    def beat(self) -> float:
        return self.beat0 + (time.monotonic() - self.t0) * self.tempo / 60.0

    def _run(self, period: float) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            while not self._stop.wait(period):
                self.sent += 1
                sock.sendto(build_message("/bridge/transport", (900000 + self.sent, float(self.tempo),
                                                                float(self.beat()), 1, 4, 4, self.options)),
                            self.address)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.client.close()


def stream(client, rid: int, timeout: float = 30.0) -> tuple[list, list, str]:
    """The replies to a streaming request (morph, knob) until its /bridge/done or /bridge/error:
    (the /bridge/ok arguments after the id, the sequences as dicts, the terminal address).
    Messages for other ids are left in client.pushed."""
    client._waiting.pop(rid, None)            # read the raw replies here, not through Reply
    oks, seqs = [], []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for address, args in client.receive(0.1):
            if not args or args[0] != rid:
                client.pushed.append((address, args))
            elif address == "/bridge/ok":
                oks.append(args[1:])
            elif address == "/bridge/seq":
                seqs.append(json.loads(args[3]) if len(args) == 4 and isinstance(args[3], str)
                            else decode_numeric_seq(args)[3])
            else:
                return oks, seqs, (address, args[1:])
    raise AssertionError(f"request {rid} did not end within {timeout} s: {oks} {len(seqs)} seqs")


def test_typed_transport_drives_a_morph_streamed_as_numbers(daemon, live_models):
    model = load_model(live_models / "mel_2bar")
    za, zb = (np.random.default_rng(3).standard_normal((2, model.z_size)) * 2).astype(np.float32)
    want = [notes_to_rows(n) for n in model.decode(latent.interpolate(za, zb, 2, "slerp"), temperature=0.0, seed=0)]
    song = TypedSong(daemon, 480.0, 402.0)           # 2 bars per second, from bar 100
    try:
        # the morph itself is a JSON request (once per press); its steps come back as numbers
        rid = song.client.send("morph", model="mel_2bar", a=z_to_list(za), b=z_to_list(zb), steps=2,
                               bars_per_step=1, mode="once")
        oks, seqs, end = stream(song.client, rid)
        assert end == ("/bridge/done", []) and len(oks) == 1 and isinstance(oks[0][0], str), (oks, end)
        assert [s["step"] for s in seqs] == [0, 1] and [s["index"] for s in seqs] == [0, 1]
        assert seqs[1]["bar"] == seqs[0]["bar"] + 1 and seqs[0]["bar"] >= 100      # song bars, from the typed beat
        assert all(s["bars_per_step"] == 1 and s["model"] == "mel_2bar" and s["parts"] == 1 for s in seqs)
        assert [s["notes"] for s in seqs] == want
        # the transport reports from the other port were answered here, with typed oks
        oks = [args for address, args in song.client.pushed if address == "/bridge/ok" and args[0] > 900000]
        assert oks and all(len(a) == 5 and a[3] >= 100 and a[4] == 1 for a in oks), oks[:3]
    finally:
        song.close()


def test_typed_knob_answers_typed_and_its_pattern_equals_the_json_forms(daemon, live_models):
    model = load_model(live_models / "mel_2bar")
    z0 = (np.random.default_rng(5).standard_normal(model.z_size)).astype(np.float32)
    numeric = daemon.client(timeout=10.0, notes_format="numeric")
    plain = daemon.client(timeout=10.0)
    try:
        for c in (numeric, plain):
            c.request_typed("transport", 120.0, 32.0, 0, 4, 4)           # stopped at bar 8
            c.request("decode", model="mel_2bar", z=z_to_list(z0))        # the live latent
        oks, (seq,), end = stream(numeric, numeric.send_typed("knob", "mel_2bar", "pc1", 0.5))
        assert oks == [["pc1", 1, 0.5]] and end[0] == "/bridge/done"
        json_oks, (want,), _ = stream(plain, plain.send("knob", model="mel_2bar", direction="pc1", value=0.5))
        assert json_oks == [['{"direction":"pc1","index":1,"value":0.5}']]
        assert seq == want
        assert seq["knob"] == {"direction": "pc1", "index": 1, "value": 0.5} and seq["knobs"] == {"pc1": 0.5}
        assert seq["bar"] == 9
        moved = z0.astype(np.float64) + KNOB_RANGE * 0.5 * direction_vector(model.info, "pc1", model.z_size)
        assert seq["notes"] == notes_to_rows(model.decode(moved.astype(np.float32)[None], temperature=0.0, seed=0)[0])
    finally:
        numeric.close()
        plain.close()


def test_typed_knob_ok_is_typed(daemon, live_models):
    c = daemon.client(timeout=10.0, notes_format="numeric")
    try:
        c.request("decode", model="mel_2bar", z=[0.1] * load_model(live_models / "mel_2bar").z_size)
        oks, seqs, end = stream(c, c.send_typed("knob", "mel_2bar", 2, -0.25))
        assert oks == [["pc2", 2, -0.25]] and len(seqs) == 1 and end[0] == "/bridge/done"
        assert seqs[0]["knob"] == {"direction": "pc2", "index": 2, "value": -0.25}
    finally:
        c.close()


def test_typed_knob_with_the_trailing_json_keeps_the_scale(daemon, live_models):
    """Fields that stay the same from move to move (scale, temperature) go in the trailing JSON."""
    model = load_model(live_models / "mel_2bar")
    c = daemon.client(timeout=10.0, notes_format="numeric")
    try:
        c.request("decode", model="mel_2bar", z=[0.3] * model.z_size)
        pentatonic = {"root": 9, "intervals": [0, 3, 5, 7, 10]}
        scale = Scale(9, (0, 3, 5, 7, 10))
        free, kept = [], []
        for value in (-1.0, 0.0, 1.0):
            _, (seq,), _ = stream(c, c.send_typed("knob", "mel_2bar", "note_density", value))
            free += [n[0] for n in seq["notes"]]
            _, (seq,), _ = stream(c, c.send_typed("knob", "mel_2bar", "note_density", value,
                                                   options={"scale": pentatonic, "temperature": 0}))
            kept += [n[0] for n in seq["notes"]]
        assert any(not scale.contains(p) for p in free), free      # without the scale some notes fall outside
        assert kept and all(scale.contains(p) for p in kept), kept
    finally:
        c.close()


@pytest.mark.parametrize("args,needle", [
    (("mel_2bar", "pc1", 1.5), "-1..1"),
    (("mel_2bar", "nope", 0.5), "no direction 'nope'"),
    (("mel_2bar", 7, 0.5), "out of range"),
    (("mel_2bar", "pc1", float("nan")), "not a finite number"),
    (("mel_2bar", "pc1", 0.5, "{\"scale\": {\"root\": 13, \"intervals\": [0]}}"), "scale.root"),
])
def test_bad_typed_knob_input_is_bad_request(daemon, live_models, args, needle):
    c = daemon.client(timeout=10.0, notes_format="numeric")
    try:
        c.request("decode", model="mel_2bar", z=[0.1] * load_model(live_models / "mel_2bar").z_size)
        r = c.request_typed("knob", *args, check=False)
        assert r.status == "error" and r.error[0] == "bad_request", r.error
        assert needle in r.error[1], r.error
        assert c.request("ping").ok                                  # the daemon serves on
    finally:
        c.close()


def test_typed_knob_needs_a_live_latent(daemon):
    c = daemon.client(timeout=10.0)
    try:
        r = c.request_typed("knob", "mel_2bar", "pc1", 0.5, check=False)
        assert r.status == "error" and r.error[0] == "bad_request" and "no live latent" in r.error[1]
    finally:
        c.close()
