"""MIDI on stage: hardware knobs in, MIDI clock in, the current pattern out (mido over python-rtmidi).

- `MidiClockFollower` turns MIDI clock (24 ppqn), start/stop/continue and song position pointer into
  a `bridge.live.clock.Clock`: the song position in beats, extrapolated between ticks on a line
  fitted to the recent ticks (so JACK/USB jitter does not move the notes), and the tempo.
- control changes go to a `KnobMap` (bridge.live.knobs: knobs.toml, CC -> direction, value -1..1).
- `PatternPlayer` plays the current pattern on a (virtual) output port, clocked by any Clock: a
  pattern is a list of notes in beats with the bar where it starts; it loops until the next pattern
  takes over at its own bar.
- `MidiLive` wires them together for the daemon (`--midi-in`, `--midi-clock-in`, `--midi-out`,
  `--knobs`, `--midi-api`).

The rtmidi API is picked with `--midi-api` (alsa | jack) or MIDO_BACKEND, e.g.
`mido.backends.rtmidi/UNIX_JACK`.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from ..core.errors import LiveError
from ..core.notes import BEATS_PER_BAR, Note
from .clock import Clock
from .knobs import KnobBinding, KnobMap
from .midi_in import PolledInput, input_names

log = logging.getLogger("bridge.midi")

PPQN = 24
CLOCK_TIMEOUT_S = 0.5        # no tick for this long: the MIDI clock is considered absent
FIT_TICKS = 48               # ticks in the tempo / phase fit (two beats)
DRUM_CHANNEL = 9

API_NAMES = {"alsa": "LINUX_ALSA", "jack": "UNIX_JACK", "coremidi": "MACOSX_CORE", "winmm": "WINDOWS_MM"}


def backend(api: str | None = None):
    """A mido backend for python-rtmidi, optionally pinned to one API (alsa | jack | ...)."""
    import mido
    name = os.environ.get("MIDO_BACKEND", "mido.backends.rtmidi")
    if api:
        key = API_NAMES.get(api.lower(), api)
        name = f"mido.backends.rtmidi/{key}"
    return mido.Backend(name, load=True)


def find_port(names: list[str], wanted: str, what: str) -> str:
    """The port called `wanted`, else the only one containing it."""
    if wanted in names:
        return wanted
    hits = [n for n in names if wanted.lower() in n.lower()]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise LiveError(f"no MIDI {what} port matches {wanted!r}; available: {names or 'none'}")
    raise LiveError(f"MIDI {what} port name {wanted!r} is ambiguous: {hits}")


# ----------------------------------------------------------------------------------------- clock in
class MidiClockFollower(Clock):
    """Song position from MIDI clock. Feed it every message with its arrival time (monotonic)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self.changed = threading.Condition(self._lock)
        self._playing = False
        self._tick = -1                      # index of the last tick (beat = tick / 24)
        self._fit: deque = deque(maxlen=FIT_TICKS)   # (tick, time) since the last start/locate
        self._last_tick_at = -math.inf
        self._a, self._b = 0.0, 60.0 / (120.0 * PPQN)  # time(tick) = a + b * tick
        self._frozen_beat = 0.0
        self.ticks_seen = 0

    def feed(self, msg, at: float | None = None) -> None:
        at = self._clock() if at is None else at
        t = msg.type
        with self.changed:
            if t == "clock":
                self.ticks_seen += 1
                self._last_tick_at = at
                if self._playing:
                    self._tick += 1
                    self._fit.append((self._tick, at))
                    self._refit()
            elif t == "start":
                self._playing, self._tick = True, -1
                self._fit.clear()
                self._frozen_beat = 0.0
            elif t == "continue":
                self._playing = True
                self._fit.clear()
            elif t == "stop":
                self._frozen_beat = self._beat_locked(at)
                self._playing = False
                self._fit.clear()
            elif t == "songpos":
                # position in MIDI beats (16th notes = 6 ticks); the next tick is at that position
                self._tick = msg.pos * (PPQN // 4) - 1
                self._frozen_beat = msg.pos / 4.0
                self._fit.clear()
            else:
                return
            self.changed.notify_all()

    def _refit(self) -> None:
        n = len(self._fit)
        if n == 1:
            k, t = self._fit[0]
            self._a = t - self._b * k
            return
        ks = [k for k, _ in self._fit]
        ts = [t for _, t in self._fit]
        mk, mt = sum(ks) / n, sum(ts) / n
        skk = sum((k - mk) ** 2 for k in ks)
        skt = sum((k - mk) * (t - mt) for k, t in zip(ks, ts))
        b = skt / skk if skk > 0 else self._b
        if b > 0:
            self._b = b
        self._a = mt - self._b * mk

    def _beat_locked(self, now: float) -> float:
        if not self._playing or not self._fit:
            return self._frozen_beat if not self._fit else self._tick / PPQN
        tick = (now - self._a) / self._b
        # never run more than 1.5 ticks past the last tick received (the source may have died)
        tick = min(tick, self._tick + 1.5)
        return max(tick, self._tick - 1.0) / PPQN

    @property
    def active(self) -> bool:
        """A clock source is ticking (seen a tick recently)."""
        return self._clock() - self._last_tick_at < CLOCK_TIMEOUT_S

    @property
    def known(self) -> bool:
        return self.active and len(self._fit) >= 2

    @property
    def playing(self) -> bool:
        return self._playing and self.active

    @property
    def tempo(self) -> float:
        return 60.0 / (self._b * PPQN)

    def beat(self, now: float | None = None) -> float:
        now = self._clock() if now is None else now
        with self._lock:
            return self._beat_locked(now)


# ----------------------------------------------------------------------------------------- pattern out
@dataclass
class Pattern:
    notes: list[Note]
    start_beat: float     # absolute song position where it takes over
    length: float         # beats; the pattern loops with this period


def channel_for(note: Note) -> int:
    return DRUM_CHANNEL if note.is_drum else max(0, min(note.track, 15))


class PatternPlayer:
    """Plays the current pattern on `port` following a Clock (a MIDI clock follower or a transport).

    `clock_fn()` returns the clock to follow now (it may change, e.g. MIDI clock appears). Events are
    sent when the clock reaches their beat; timings are recorded in `self.log` when `record` is set.
    """

    def __init__(self, port, clock_fn: Callable[[], Clock | None], record: bool = False):
        import mido
        self._mido = mido
        self.port = port
        self._clock_fn = clock_fn
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._patterns: list[Pattern] = []
        self._sounding: dict[tuple[int, int], float] = {}   # (channel, pitch) -> off beat
        self._stop = threading.Event()
        self.record = record
        self.log: list[tuple[float, float, str, int]] = []  # (sent_at, beat, type, pitch)
        self._thread = threading.Thread(target=self._run, name="midi-out", daemon=True)
        self._thread.start()

    def set_pattern(self, notes: list[Note], bar: int | None, length_beats: float) -> None:
        """`notes` loop from `bar` (absolute; None = the next bar not started) every `length_beats`."""
        clock = self._clock_fn()
        if bar is None:
            bar = clock.next_bar() if clock is not None and clock.known else 0
        p = Pattern(sorted(notes, key=lambda n: n.start), bar * BEATS_PER_BAR, float(length_beats))
        with self._wake:
            self._patterns = [q for q in self._patterns if q.start_beat < p.start_beat] + [p]
            self._wake.notify_all()

    def clear(self) -> None:
        with self._wake:
            self._patterns = []
            self._wake.notify_all()

    def close(self) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        self._thread.join(2.0)
        self._all_off()

    # -- event generation --------------------------------------------------------------------
    def _events(self, lo: float, hi: float) -> list[tuple[float, int, Note]]:
        """(beat, 0=off/1=on, note) with lo <= beat < hi, offs first at equal beats."""
        out = []
        pats = self._patterns
        for i, p in enumerate(pats):
            until = pats[i + 1].start_beat if i + 1 < len(pats) else math.inf
            if p.length <= 0 or not p.notes or hi <= p.start_beat or lo > until:
                continue
            k0 = max(int(math.floor((lo - p.start_beat) / p.length)) - 1, 0)
            k1 = int(math.floor((min(hi, until) - p.start_beat) / p.length)) + 1
            for k in range(k0, k1 + 1):
                base = p.start_beat + k * p.length
                for n in p.notes:
                    on = base + n.start
                    if on >= until or n.start >= p.length:
                        continue
                    off = min(base + n.end, until)
                    if lo <= on < hi:
                        out.append((on, 1, n))
                    if lo <= off < hi:
                        out.append((off, 0, n))
        out.sort(key=lambda e: (e[0], e[1]))
        return out

    def _drop_old_patterns(self, beat: float) -> None:
        while len(self._patterns) > 1 and self._patterns[1].start_beat <= beat - 8:
            self._patterns.pop(0)

    def _send(self, kind: int, n: Note, beat: float) -> None:
        ch = channel_for(n)
        key = (ch, n.pitch)
        if kind == 1:
            if key in self._sounding:
                self.port.send(self._mido.Message("note_off", channel=ch, note=n.pitch))
            self.port.send(self._mido.Message("note_on", channel=ch, note=n.pitch, velocity=n.velocity))
            self._sounding[key] = beat
        else:
            if key not in self._sounding:
                return
            del self._sounding[key]
            self.port.send(self._mido.Message("note_off", channel=ch, note=n.pitch))
        if self.record:
            self.log.append((time.monotonic(), beat, "on" if kind else "off", n.pitch))

    def _all_off(self) -> None:
        for ch, pitch in list(self._sounding):
            try:
                self.port.send(self._mido.Message("note_off", channel=ch, note=pitch))
            except Exception:  # noqa: BLE001 - the port may be gone at shutdown
                pass
        self._sounding.clear()

    def _run(self) -> None:
        cursor = None
        while not self._stop.is_set():
            clock = self._clock_fn()
            if clock is None or not clock.known or not clock.playing:
                with self._wake:
                    self._all_off()
                    self._wake.wait(0.02)
                cursor = None
                continue
            tempo = clock.tempo
            eps = 0.0003 * tempo / 60.0          # send up to 0.3 ms early rather than a loop late
            b = clock.beat()
            with self._wake:
                if cursor is None or b < cursor - 0.25 or b > cursor + 1.0:
                    self._all_off()               # started, located or jumped: start clean here
                    cursor = b
                due = self._events(cursor, b + eps)
                for beat, kind, n in due:
                    self._send(kind, n, beat)
                cursor = max(cursor, b + eps)
                self._drop_old_patterns(b)
                upcoming = self._events(cursor, cursor + 2.0)
                if upcoming:
                    wait = clock.seconds_until_beat(upcoming[0][0]) - 0.0002
                else:
                    wait = 0.05
                if wait > 0:
                    self._wake.wait(min(wait, 0.05))


# ----------------------------------------------------------------------------------------- wiring
class MidiLive:
    """The daemon's MIDI side: opens the ports, follows the clock, routes knobs, plays patterns.

    on_knob(binding, value) is called for each mapped control change (from the MIDI input's polling thread).
    transport_fn() returns the OSC transport to follow when no MIDI clock is present.
    """

    def __init__(self, midi_in: str | None = None, midi_out: str | None = None, clock_in: str | None = None,
                 knobs: KnobMap | None = None, api: str | None = None,
                 on_knob: Callable[[KnobBinding, float], None] | None = None,
                 transport_fn: Callable[[], Clock | None] = lambda: None, record: bool = False,
                 client_name: str = "latent-bridge"):
        self.backend = backend(api)
        self.follower = MidiClockFollower()
        self.knobs = knobs
        self.on_knob = on_knob
        self.transport_fn = transport_fn
        self.inputs = []
        self.cc_seen = 0
        # fn(msg, at) for each note on / off of --midi-in (bridge.surface records phrases to learn)
        self.note_listeners: list[Callable] = []
        names = input_names(self.backend.api) if (midi_in or clock_in) else []
        for wanted, role in ((midi_in, "in"), (clock_in, "clock")):
            if wanted:
                # polled, not a callback: bridge.live.midi_in says why
                self.inputs.append(PolledInput(find_port(names, wanted, "input"), self.backend.api,
                                               self._on_message, client_name=f"{client_name}-{role}"))
        self.out_port = None
        self.player = None
        if midi_out:
            self.out_port = self.backend.open_output(midi_out, virtual=True, client_name=client_name)
            self.player = PatternPlayer(self.out_port, self.clock, record=record)

    def clock(self) -> Clock | None:
        """MIDI clock when a source is ticking, else the OSC transport."""
        if self.follower.active:
            return self.follower
        return self.transport_fn()

    def _on_message(self, msg, at: float) -> None:
        if msg.type in ("clock", "start", "stop", "continue", "songpos"):
            self.follower.feed(msg, at)
            return
        if msg.type in ("note_on", "note_off"):
            for fn in list(self.note_listeners):
                try:
                    fn(msg, at)
                except Exception:  # noqa: BLE001 - a listener must not kill the MIDI thread
                    log.exception("note listener failed")
            return
        if self.knobs is not None and self.on_knob is not None:
            hit = self.knobs.lookup(msg)
            if hit is not None:
                self.cc_seen += 1
                try:
                    self.on_knob(*hit)
                except Exception:  # noqa: BLE001 - a bad knob must not kill the MIDI thread
                    log.exception("knob handler failed")

    def play(self, notes: list[Note], bar: int | None, length_beats: float) -> None:
        if self.player is not None:
            self.player.set_pattern(notes, bar, length_beats)

    def close(self) -> None:
        if self.player is not None:
            self.player.close()
        for p in self.inputs:
            p.close()
        if self.out_port is not None:
            self.out_port.close()
