"""The surface's parts on their own: surface.toml, the feedback's bound and coalescing (a real
daemon socket sending to a real UDP socket), the phrase recorder on a real Transport clock."""
from __future__ import annotations

import socket

import mido
import pytest
from pythonosc.osc_message import OscMessage

from bridge.core.errors import BadRequest, LiveError
from bridge.daemon.server import BridgeServer
from bridge.live.clock import Transport
from bridge.surface import values
from bridge.surface.config import SurfaceConfig
from bridge.surface.feedback import Feedback
from bridge.surface.osc import MAX_MESSAGES_PER_FLUSH, OscOutbox
from bridge.surface.phrase import PhraseRecorder
from bridge.surface.state import SurfaceState


def test_surface_toml_renames_and_refuses_bad_values(tmp_path):
    path = tmp_path / "surface.toml"
    path.write_text('reply_port = "source"\nrate_hz = 10\n[addresses]\n"knob/1" = "/1/fader1"\nsample = "/1/push1"\n')
    cfg = SurfaceConfig.load(path)
    assert cfg.reply_port is None and cfg.rate_hz == 10
    assert cfg.actions["/1/fader1"] == "knob/1" and "/lb/knob/1" not in cfg.actions
    assert cfg.prefixes == ("/1/", "/lb/") and cfg.addresses["status"] == "/lb/status"
    for bad, fragment in [('reply_port = 70000\n', "reply_port"), ('rate_hz = 1000\n', "rate_hz"),
                          ('[addresses]\nknob9 = "/x/y"\n', "no action 'knob9'"),
                          ('[addresses]\nsample = "/bridge/ping"\n', "outside /bridge/"),
                          ('[addresses]\nsample = "/lb/model"\n', "share one address"),
                          ('morph_mode = "zigzag"\n', "morph_mode"), ('colour = 1\n', "unknown key"),
                          ("reply_port = ", "surface.toml")]:
        path.write_text(bad)
        with pytest.raises(LiveError, match=fragment):
            SurfaceConfig.load(path)


def test_typed_checks_name_the_address():
    assert values.unit("/k", [1]) == [1.0] and values.unit("/xy", [0.0, 0.25], 2) == [0.0, 0.25]
    assert values.pressed("/b", []) and values.pressed("/b", [1.0]) and not values.pressed("/b", [0.0])
    assert values.model_name("/m", [1.0], ["a", "b"]) == "b"
    for fn, fragment in [(lambda: values.unit("/k", [float("nan")]), "got nan"),
                         (lambda: values.unit("/k", [True]), "got True"),
                         (lambda: values.unit("/k", []), "got 0 arguments"),
                         (lambda: values.number("/t", [11.0], 0, 10), "0..10, got 11.0"),
                         (lambda: values.pressed("/b", [1, 2]), "is a trigger"),
                         (lambda: values.model_name("/m", [0.5], ["a"]), "index 0..0")]:
        with pytest.raises(BadRequest, match=fragment):
            fn()


class _Session:
    label = "test"

    def __init__(self, outbox, state):
        self.outbox, self.surface, self.state = outbox, state, {}


def _drain(sock) -> list[OscMessage]:
    out = []
    sock.setblocking(False)
    while True:
        try:
            out.append(OscMessage(sock.recv(65535)))
        except BlockingIOError:
            return out


def test_feedback_sends_only_changes_bounded_per_round():
    server = BridgeServer({}, port=0, workers=1)
    server.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        state = SurfaceState("mel_2bar")
        outbox = OscOutbox(server, sock.getsockname(), SurfaceConfig())
        feedback = Feedback(lambda: [_Session(outbox, state)], lambda: ["mel_2bar"], rate_hz=20)
        first = feedback.round()
        assert first == MAX_MESSAGES_PER_FLUSH          # 20 values to send: capped, the rest next round
        rest = feedback.round()
        assert 0 < rest < MAX_MESSAGES_PER_FLUSH
        assert feedback.round() == 0                       # nothing changed: nothing sent
        received = _drain(sock)
        assert len(received) == first + rest
        for v in [i / 500 for i in range(500)]:            # a fader moved 500 times between two rounds
            state.knob("mel_2bar", 1, v)
        state.set(status="busy day")
        assert feedback.round() == 2                       # its latest value once, and the status
        msgs = {m.address: m.params for m in _drain(sock)}
        assert msgs == {"/lb/knob/1": [pytest.approx(499 / 500)], "/lb/status": ["busy day"]}
    finally:
        sock.close()
        server.shutdown()


def test_phrase_recorder_takes_the_last_phrase_from_its_bar():
    now = [0.0]
    tr = Transport(lambda: now[0])
    tr.update({"tempo": 120.0, "beat": 0.0, "playing": True})      # 2 beats a second
    rec = PhraseRecorder(lambda: tr, gap_beats=4.0)

    def note(pitch, on_beat, off_beat):
        rec.feed(mido.Message("note_on", note=pitch, velocity=90), on_beat / 2)
        rec.feed(mido.Message("note_off", note=pitch), off_beat / 2)

    assert rec.phrase(2) is None
    note(50, 1.0, 2.0)                                   # an old phrase
    note(60, 13.5, 14.0)                                 # after a gap of 11.5 beats: the new phrase, bar 3
    note(62, 14.0, 16.5)
    rec.feed(mido.Message("note_on", note=64, velocity=70), 17.0 / 2)   # still held
    rec.feed(mido.Message("note_on", note=67, velocity=70), 21.0 / 2)   # past 2 bars from bar 3: cut
    assert rec.phrase(2, now=18.0 / 2) == [[60, 1.5, 0.5, 90, 0], [62, 2.0, 2.5, 90, 0], [64, 5.0, 1.0, 70, 0]]
