"""MIDI on stage: clock following, knob maps and the pattern player (the whole path through a real JACK
server is test_midi_jack.py, run in its own process)."""
from __future__ import annotations

import time
from pathlib import Path

import mido
import numpy as np
import pytest

from bridge.core.errors import LiveError
from bridge.core.notes import Note
from bridge.live.clock import Transport
from bridge.live.knobs import KnobMap, cc_to_value
from bridge.live.midi import MidiClockFollower, PatternPlayer


# ---- clock follower ---------------------------------------------------------------------------------

def test_clock_follower_tempo_position_start_stop_songpos():
    now = [0.0]
    f = MidiClockFollower(lambda: now[0])
    tick = 60.0 / 140 / 24
    f.feed(mido.Message("start"), 0.0)
    rng = np.random.default_rng(0)
    for k in range(96):                                   # 4 beats with +-1 ms jitter
        now[0] = 1.0 + k * tick + rng.uniform(-0.001, 0.001)
        f.feed(mido.Message("clock"), now[0])
    assert f.known and f.playing
    assert f.tempo == pytest.approx(140, abs=0.5)
    now[0] = 1.0 + 95.5 * tick
    assert f.beat() == pytest.approx(95.5 / 24, abs=0.02)
    assert f.bar() == 0 and f.next_bar() == 1
    f.feed(mido.Message("stop"), now[0])
    assert not f.playing
    frozen = f.beat()
    now[0] += 1.0
    assert f.beat() == pytest.approx(frozen)
    f.feed(mido.Message("songpos", pos=32), now[0])       # 32 sixteenths = beat 8
    f.feed(mido.Message("continue"), now[0])
    for k in range(3):
        now[0] += tick
        f.feed(mido.Message("clock"), now[0])
    assert f.beat() == pytest.approx(8 + 2 / 24, abs=0.01)
    now[0] += 2.0                                          # the source died: not active any more
    assert not f.playing and not f.known


def test_knob_map_and_cc_values(tmp_path):
    path = tmp_path / "knobs.toml"
    path.write_text('model = "mel_2bar"\nseed = 3\n[[knob]]\ncc = 21\ndirection = "note_density"\n'
                    '[[knob]]\ncc = 22\ndirection = 1\nchannel = 2\n')
    km = KnobMap.load(path)
    assert km.model == "mel_2bar" and km.seed == 3 and len(km.bindings) == 2
    b, v = km.lookup(mido.Message("control_change", control=21, value=127, channel=5))
    assert b.direction == "note_density" and v == 1.0
    assert km.lookup(mido.Message("control_change", control=22, value=0, channel=0)) is None  # wrong channel
    b, v = km.lookup(mido.Message("control_change", control=22, value=0, channel=1))
    assert b.direction == 1 and v == -1.0
    assert km.lookup(mido.Message("note_on", note=21)) is None
    assert cc_to_value(64) == 0.0 and cc_to_value(0) == -1.0 and cc_to_value(127) == 1.0
    example = KnobMap.load(Path(__file__).resolve().parents[3] / "knobs.example.toml")
    b, v = example.lookup(mido.Message("control_change", control=21, value=96, channel=9))
    assert (b.model, b.direction, v) == ("drums_2bar", "hit_density", pytest.approx(32 / 63))
    b, _ = example.lookup(mido.Message("control_change", control=21, value=96, channel=0))
    assert (b.model, b.direction) == ("mel_2bar", "note_density")
    for bad, fragment in [('[[knob]]\ncc = 200\ndirection = "x"\nmodel = "m"\n', "0..127"),
                          ('[[knob]]\ncc = 1\ndirection = "x"\n', "has no model"),
                          ('model = "m"\n', "no \\[\\[knob\\]\\]"),
                          ('model = "m"\n[[knob]]\ncc = 1\ndirection = "x"\nchannel = 17\n', "1..16"),
                          ("model = ", "Invalid")]:
        path.write_text(bad)
        with pytest.raises(LiveError, match=fragment):
            KnobMap.load(path)


class ListPort:
    def __init__(self):
        self.messages = []

    def send(self, msg):
        self.messages.append((time.monotonic(), msg))


def test_pattern_player_follows_the_osc_transport_and_switches_on_the_bar():
    """No MIDI clock: the player follows a client's transport; a new pattern takes over at its bar
    and cuts notes of the old one at the boundary."""
    tr = Transport()
    tr.update({"tempo": 480.0, "beat": 3.0, "playing": True})    # a bar lasts 0.5 s
    port = ListPort()
    player = PatternPlayer(port, lambda: tr, record=True)
    try:
        a = [Note(60, 0.0, 1.0), Note(62, 2.0, 6.0)]               # 62 would ring past the next pattern
        player.set_pattern(a, 1, 8.0)
        player.set_pattern([Note(70, 0.5, 1.0, 90, 1), Note(36, 1.0, 1.25, 100, 2, True)], 2, 4.0)
        time.sleep(2.9 * 60 / 480 * 4)                            # until the middle of bar 3
    finally:
        player.close()
    events = [(round(b, 3), kind, pitch) for _, b, kind, pitch in player.log]
    assert events[:6] == [(4.0, "on", 60), (5.0, "off", 60), (6.0, "on", 62), (8.0, "off", 62),
                          (8.5, "on", 70), (9.0, "off", 70)]
    assert (9.0, "on", 36) in events and (12.5, "on", 70) in events
    msgs = [m for _, m in port.messages]
    assert any(m.type == "note_on" and m.note == 36 and m.channel == 9 for m in msgs)   # drums on ch 10
    assert any(m.type == "note_on" and m.note == 70 and m.channel == 1 and m.velocity == 90 for m in msgs)
    for t, beat, kind, pitch in player.log:
        assert abs(t - tr.time_of_beat(beat, t)) < 0.02


# ---- MIDI input arrival times -----------------------------------------------------------------------

def test_arrival_clock_recovers_arrival_times_from_native_stamps():
    """Polled input: arrival = native timeline + the smallest poll delay seen, so the poll interval
    and GIL waits (here 0.1-6 ms, uniformly) do not jitter the times the clock follower gets."""
    from bridge.live.midi_in import ArrivalClock
    rng = np.random.default_rng(1)
    arrivals = 5.0 + np.cumsum(rng.uniform(0.01, 0.03, 200))
    polled = arrivals + rng.uniform(0.0001, 0.006, 200)
    clock = ArrivalClock()
    got, prev = [], None
    for at, seen in zip(arrivals, polled):
        got.append(clock.arrival(0.0 if prev is None else at - prev, seen))
        prev = at
    err = np.abs(np.asarray(got) - arrivals)
    assert err[20:].max() < 0.0005, err[20:].max()        # the poll jitter (up to 6 ms) is gone
    assert np.all(np.asarray(got) <= polled + 1e-9)       # never after it was seen
