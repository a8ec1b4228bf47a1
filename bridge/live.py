"""Live performance core: the client's transport, tempo-synced morphs and latent knobs.

The Live device is the clock. A client sends `transport` several times per beat; `Transport`
keeps the song position (in quarter-note beats, as Live's current_song_time) and extrapolates it
between updates with the monotonic clock. Bars are 4/4 only: bar = floor(beat / 4).

`MorphJob` decodes an interpolation once (all steps in one batch) and streams each step's sequence
at least `lookahead_bars` (default 1 bar at the current tempo) before the bar where it starts.
`LatestOnly` runs at most one job at a time per client and always the latest request (knobs).
`LiveClient` is the per-client state the daemon's ops use; it knows nothing of OSC: it sends through
a `send(address, payload_dict)` callable.
"""
from __future__ import annotations

import itertools
import math
import threading
import logging
import time
from typing import Callable

import numpy as np

from .notes import BEATS_PER_BAR

log = logging.getLogger("bridge.live")

KNOB_RANGE = 2.0           # a knob at +-1 moves +-2 units along a direction (the measured effect range)
DEFAULT_LOOKAHEAD_BARS = 1.0
MAX_TEMPO = 999.0
_POLL_S = 0.05             # schedulers re-check at least this often (transport changes wake them at once)


class LiveError(ValueError):
    """A live request that cannot be honoured (the daemon answers /bridge/error bad_request)."""


# ----------------------------------------------------------------------------------------- clock
class Clock:
    """What schedulers need from a clock source (the client's transport, or incoming MIDI clock)."""

    changed: threading.Condition

    @property
    def known(self) -> bool:  # a position has been received
        raise NotImplementedError

    @property
    def playing(self) -> bool:
        raise NotImplementedError

    @property
    def tempo(self) -> float:
        raise NotImplementedError

    def beat(self, now: float | None = None) -> float:
        raise NotImplementedError

    def bar(self, now: float | None = None) -> int:
        return int(math.floor(self.beat(now) / BEATS_PER_BAR + 1e-9))

    def next_bar(self, now: float | None = None) -> int:
        """The first bar that has not started yet."""
        return self.bar(now) + 1

    def seconds_until_beat(self, beat: float, now: float | None = None) -> float:
        """Seconds from `now` until `beat` at the current tempo; inf when stopped or unknown."""
        if not self.known or not self.playing:
            return math.inf
        return (beat - self.beat(now)) * 60.0 / self.tempo

    def time_of_beat(self, beat: float, now: float | None = None) -> float | None:
        """The monotonic time at which `beat` will sound (None when stopped)."""
        now = time.monotonic() if now is None else now
        s = self.seconds_until_beat(beat, now)
        return None if math.isinf(s) else now + s


def _number(msg: dict, key: str, default=None):
    v = msg.get(key, default)
    if v is None:
        raise LiveError(f"transport needs {key!r}")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise LiveError(f"transport {key!r} must be a finite number, got {v!r}")
    return float(v)


class Transport(Clock):
    """A client's view of Live's transport, extrapolated between `transport` messages."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self.changed = threading.Condition(self._lock)
        self._tempo = 120.0
        self._beat = 0.0
        self._at = 0.0
        self._playing = False
        self._known = False
        self.updates = 0

    @staticmethod
    def parse(msg: dict) -> dict:
        """Validate a transport message; raise LiveError with a clear message."""
        if not isinstance(msg, dict):
            raise LiveError("transport takes a JSON object {tempo, beat, playing, numerator, denominator}")
        num = msg.get("numerator", 4)
        den = msg.get("denominator", 4)
        for k, v in (("numerator", num), ("denominator", den)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v):
                raise LiveError(f"transport {k!r} must be an integer, got {v!r}")
        if (int(num), int(den)) != (4, 4):
            raise LiveError(f"only 4/4 is supported (the models are trained on 4/4 bars of 16 steps); "
                            f"the song is in {int(num)}/{int(den)}")
        tempo = _number(msg, "tempo")
        if not 0.0 < tempo <= MAX_TEMPO:
            raise LiveError(f"transport tempo must be in (0, {MAX_TEMPO:g}] bpm, got {tempo:g}")
        beat = _number(msg, "beat")
        playing = msg.get("playing", True)
        if isinstance(playing, (int, float)) and not isinstance(playing, bool) and playing in (0, 1):
            playing = bool(playing)
        if not isinstance(playing, bool):
            raise LiveError(f"transport 'playing' must be true/false (or 1/0), got {playing!r}")
        return {"tempo": tempo, "beat": beat, "playing": playing}

    def update(self, msg: dict, now: float | None = None) -> dict:
        t = self.parse(msg)
        now = self._clock() if now is None else now
        with self.changed:
            self._tempo, self._beat, self._playing = t["tempo"], t["beat"], t["playing"]
            self._at = now
            self._known = True
            self.updates += 1
            self.changed.notify_all()
        return t

    @property
    def known(self) -> bool:
        return self._known

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def tempo(self) -> float:
        return self._tempo

    def beat(self, now: float | None = None) -> float:
        now = self._clock() if now is None else now
        with self._lock:
            if not self._playing:
                return self._beat
            return self._beat + (now - self._at) * self._tempo / 60.0

    def snapshot(self, now: float | None = None) -> dict:
        b = self.beat(now)
        return {"tempo": self._tempo, "beat": round(b, 4), "bar": int(math.floor(b / BEATS_PER_BAR + 1e-9)),
                "playing": self._playing}


def wait_for_beat(clock: Clock, beat: float, cancelled: threading.Event, max_wait: float = _POLL_S) -> bool:
    """Block until the clock reaches `beat` (True) or the job is cancelled (False)."""
    while not cancelled.is_set():
        remaining = clock.seconds_until_beat(beat)
        if remaining <= 0:
            return True
        with clock.changed:
            clock.changed.wait(min(remaining, max_wait))
    return False


# ----------------------------------------------------------------------------------------- morph
MODES = ("once", "loop", "pingpong")


def step_order(n: int, mode: str, count: int | None = None) -> list[int]:
    """The step played in each slot: once 0..n-1; loop 0..n-1,0..; pingpong 0..n-1,n-2..1,0.."""
    if mode not in MODES:
        raise LiveError(f"morph mode must be one of {', '.join(MODES)}, got {mode!r}")
    if n < 1:
        raise LiveError("a morph needs at least one step")
    if mode == "once":
        return list(range(n))[: count if count is not None else n]
    count = 2 * n if count is None else count
    return [step_at(k, n, mode) for k in range(count)]


def step_at(k: int, n: int, mode: str) -> int | None:
    """Step for slot k (None once a `once` morph is over)."""
    if mode == "once":
        return k if k < n else None
    if mode == "loop" or n == 1:
        return k % n
    period = 2 * (n - 1)
    i = k % period
    return i if i < n else period - i


_morph_ids = itertools.count(1)


class MorphJob:
    """One morph: decode every step in one batch, then stream them on the bar grid.

    decode_fn(cancelled: Event) -> (zs (n, z), list of n note lists); it runs on the job's thread so a
    slow decode never blocks the daemon, and it may stop early once `cancelled` is set. on_step(slot, step, bar, notes, z) sends one step; it is called only
    while the job is not cancelled. on_done(reason) is called once at the end
    ("done" | "cancelled" | "error: ...").
    """

    def __init__(self, clock: Clock, mode: str, bars_per_step: int, decode_fn, on_step, on_done=None,
                 start_bar: int | None = None, lookahead_bars: float = DEFAULT_LOOKAHEAD_BARS,
                 morph_id: int | None = None):
        if mode not in MODES:
            raise LiveError(f"morph mode must be one of {', '.join(MODES)}, got {mode!r}")
        if isinstance(bars_per_step, bool) or not isinstance(bars_per_step, int) or not 1 <= bars_per_step <= 64:
            raise LiveError(f"morph bars_per_step must be an integer 1..64, got {bars_per_step!r}")
        if lookahead_bars < 1.0:
            raise LiveError("morph lookahead must be at least one bar")
        if start_bar is not None and (isinstance(start_bar, bool) or not isinstance(start_bar, int)):
            raise LiveError(f"morph start_bar must be an integer bar index, got {start_bar!r}")
        if start_bar is not None and clock.known and clock.playing and start_bar < clock.next_bar():
            raise LiveError(f"morph start_bar {start_bar} has already started (the song is in bar {clock.bar()})")
        self.id = next(_morph_ids) if morph_id is None else morph_id
        self.clock, self.mode, self.bars_per_step = clock, mode, bars_per_step
        self.lookahead_bars = float(lookahead_bars)
        self.start_bar = start_bar
        self._decode_fn, self._on_step, self._on_done = decode_fn, on_step, on_done
        self.cancelled = threading.Event()
        self.finished = threading.Event()
        self.zs = None
        self.seqs = None
        self.sent: list[dict] = []   # {slot, step, bar, lead_s}: what went out and how early
        self.decode_s = None
        self._thread = threading.Thread(target=self._run, name=f"morph-{self.id}", daemon=True)

    def start(self) -> "MorphJob":
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.cancelled.set()
        with self.clock.changed:
            self.clock.changed.notify_all()

    def join(self, timeout=None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _finish(self, reason: str) -> None:
        self.finished.set()
        if self._on_done is not None:
            self._on_done(reason)

    def _run(self) -> None:
        try:
            t0 = time.monotonic()
            self.zs, self.seqs = self._decode_fn(self.cancelled)
            self.decode_s = time.monotonic() - t0
        except Exception as e:  # noqa: BLE001 - reported to the client, never kills the daemon
            if self.cancelled.is_set():
                return self._finish("cancelled")
            return self._finish(f"error: {e}")
        if self.cancelled.is_set():
            return self._finish("cancelled")
        n = len(self.seqs)
        look = self.lookahead_bars * BEATS_PER_BAR
        start = self.start_bar
        slot = 0
        while not self.cancelled.is_set():
            if not (self.clock.known and self.clock.playing):
                with self.clock.changed:
                    self.clock.changed.wait(_POLL_S * 4)
                continue
            if start is None:
                # the first bar that starts at least the lookahead after now
                start = int(math.ceil((self.clock.beat() + look) / BEATS_PER_BAR - 1e-9))
                self.start_bar = start
            # a jump forward in the song (or a slow decode) skips the slots whose bars are over
            bar_now = self.clock.bar()
            if start + (slot + 1) * self.bars_per_step <= bar_now:
                slot = (bar_now - start) // self.bars_per_step
            step = step_at(slot, n, self.mode)
            if step is None:
                return self._finish("done")
            bar = start + slot * self.bars_per_step
            if not wait_for_beat(self.clock, bar * BEATS_PER_BAR - look, self.cancelled):
                break
            if self.clock.bar() > bar + self.bars_per_step - 1:
                continue  # the song jumped past this slot while waiting
            lead = self.clock.seconds_until_beat(bar * BEATS_PER_BAR)
            if self.cancelled.is_set():
                break
            self._on_step(slot, step, bar, self.seqs[step], None if self.zs is None else self.zs[step])
            self.sent.append({"slot": slot, "step": step, "bar": bar, "lead_s": lead})
            slot += 1
        self._finish("cancelled")


# ----------------------------------------------------------------------------------------- knobs
class LatestOnly:
    """Run `fn(value)` for the latest submitted value, one call at a time, never a backlog.

    Values submitted while a call runs replace each other; when the call returns the newest one
    (if any) runs next. The worker thread exits when idle.
    """

    def __init__(self, fn: Callable, name: str = "latest"):
        self._fn, self._name = fn, name
        self._lock = threading.Lock()
        self._pending = None
        self._has_pending = False
        self._running = False
        self.calls = 0
        self.dropped = 0
        self.idle = threading.Event()
        self.idle.set()

    def submit(self, value) -> None:
        with self._lock:
            if self._has_pending:
                self.dropped += 1
            self._pending, self._has_pending = value, True
            if self._running:
                return
            self._running = True
            self.idle.clear()
        threading.Thread(target=self._work, name=self._name, daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._has_pending:
                    self._running = False
                    self.idle.set()
                    return
                value, self._pending, self._has_pending = self._pending, None, False
            self.calls += 1
            try:
                self._fn(value)
            except Exception:  # noqa: BLE001 - fn reports its own errors
                pass

    def cancel_pending(self) -> None:
        with self._lock:
            self._pending, self._has_pending = None, False


def direction_table(info: dict) -> list[dict]:
    """A model's directions from model.json: the `directions` list, else the `attributes` map."""
    dirs = info.get("directions") or []
    if not dirs and info.get("attributes"):
        dirs = [{"name": k, **v} for k, v in info["attributes"].items()]
    return [d for d in dirs if isinstance(d, dict) and "name" in d and "vector" in d]


def resolve_direction(info: dict, direction) -> tuple[int, dict]:
    dirs = direction_table(info)
    if not dirs:
        raise LiveError(f"model {info.get('name')!r} ships no latent directions "
                        "(export it with runs/<name>/directions.json)")
    if isinstance(direction, bool):
        raise LiveError(f"knob direction must be a name or an index, got {direction!r}")
    if isinstance(direction, int):
        if not 0 <= direction < len(dirs):
            raise LiveError(f"knob direction index {direction} out of range 0..{len(dirs) - 1}")
        return direction, dirs[direction]
    if isinstance(direction, str):
        for i, d in enumerate(dirs):
            if d["name"] == direction:
                return i, d
        raise LiveError(f"model {info.get('name')!r} has no direction {direction!r}; "
                        f"known: {', '.join(d['name'] for d in dirs)}")
    raise LiveError(f"knob direction must be a name or an index, got {direction!r}")


def knob_value(v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise LiveError(f"knob value must be a number in -1..1, got {v!r}")
    if not -1.0 <= v <= 1.0:
        raise LiveError(f"knob value must be in -1..1, got {v}")
    return float(v)


class LiveClient:
    """Per-client live state: transport, the running morph, the knob values and the knob worker.

    The position the knobs move from is the session's `latent[model]` (set by a morph step, or by
    the core decode / encode ops); the knobs add offsets along the model's directions.
    """

    def __init__(self, send: Callable[[str, dict], None], clock: Callable[[], float] = time.monotonic):
        self.send = send
        self.transport = Transport(clock)
        self.lock = threading.Lock()
        self.morph: MorphJob | None = None
        self.knobs: dict[str, dict[str, float]] = {}   # model name -> {direction name: knob value}
        self.knob_worker: LatestOnly | None = None

    def replace_morph(self, job: MorphJob | None) -> MorphJob | None:
        with self.lock:
            old, self.morph = self.morph, job
        if old is not None:
            old.cancel()
        return old

    def stop_morph(self, morph_id: int | None = None) -> MorphJob | None:
        with self.lock:
            if self.morph is None or (morph_id is not None and self.morph.id != morph_id):
                return None
            old, self.morph = self.morph, None
        old.cancel()
        return old

    def close(self) -> None:
        self.stop_morph()
        if self.knob_worker is not None:
            self.knob_worker.cancel_pending()


# ======================================================================================== daemon ops
# Imported by the daemon (server.OP_MODULES), so the ops below register themselves.
from . import latent as _latent  # noqa: E402
from . import ops as _ops  # noqa: E402
from .ops import OpError, bad, notes_to_rows  # noqa: E402
from .session import DONE, SEQ  # noqa: E402

STATE_KEY = "live.client"


class LiveHub:
    """Daemon-wide live state: the MIDI side (if configured) and which client it follows."""

    def __init__(self):
        self.midi = None                 # bridge.midi_live.MidiLive
        self.focus = None                # the session that sent the latest live op
        self.hardware = None             # HardwareClient for knobs.toml when no OSC client leads
        self.lock = threading.Lock()

    def touch(self, session) -> None:
        self.focus = session

    def transport(self) -> Clock | None:
        s = self.focus
        if s is None:
            return None
        live = s.state.get(STATE_KEY)
        return live.transport if live is not None else None

    def pattern(self, session, notes, bar: int | None, length_beats: float) -> None:
        """A live op pushed `notes` for `bar` to `session`: play it on MIDI out if it leads."""
        if self.midi is not None and (session is self.focus or session is self.hardware):
            self.midi.play(notes, bar, length_beats)


HUB = LiveHub()


def client(session) -> LiveClient:
    """The LiveClient of a session (created on first use, cleaned up when the session closes)."""
    live = session.state.get(STATE_KEY)
    if live is None:
        live = LiveClient(session.send)
        session.state[STATE_KEY] = live
        session.on_close(_close_session)
    HUB.touch(session)
    return live


def _close_session(session) -> None:
    live = session.state.pop(STATE_KEY, None)
    if live is not None:
        live.close()
    if HUB.focus is session:
        HUB.focus = None


def _seq_messages(session, request_id: int, model, rows: list, index: int, count: int, extra: dict) -> list:
    msgs = session.sequence_messages(request_id, model.name, int(model.info["bars"]), [rows],
                                     [dict(extra, index=index)])
    return [(r, index, count, text) for (r, _i, _c, text) in msgs]


def _send_seq(session, request_id: int, model, notes, index: int, count: int, extra: dict,
              done: bool = False) -> None:
    for args in _seq_messages(session, request_id, model, notes_to_rows(notes), index, count, extra):
        session.send(SEQ, *args)
    if done:
        session.send(DONE, request_id)


def _wrap(fn):
    """Run fn, turning LiveError into bad_request."""
    try:
        return fn()
    except LiveError as e:
        raise bad(str(e)) from None


@_ops.op("transport", serial=False)
def op_transport(session, request):
    live = client(session)
    _wrap(lambda: live.transport.update(request.fields))
    return live.transport.snapshot()


def _endpoint(request, model, key: str) -> np.ndarray:
    v = request.fields.get(key)
    if isinstance(v, list) and v and not isinstance(v[0], list):
        return request.z(model, key)                       # a latent vector
    notes = request.notes(model, key)
    return np.asarray(model.encode([notes]), dtype=np.float32)[0]


@_ops.op("morph", serial=False)
def op_morph(session, request):
    live = client(session)
    model = request.model()
    steps = request.integer("steps", 8, 2, request.limits.max_steps, over="too_large")
    bars_per_step = request.integer("bars_per_step", int(model.info["bars"]), 1, 64)
    mode = request.string("mode", "once", MODES)
    temperature = request.temperature(0.0)
    seed = request.seed()
    method = request.string("method", "slerp", ("slerp", "lerp"))
    start_bar = request.integer("start_bar", None, 0)
    lookahead = request.number("lookahead_bars", DEFAULT_LOOKAHEAD_BARS, 1.0, 16.0)
    if not live.transport.known:
        raise bad("morph needs the song position: send 'transport' {tempo, beat, playing, numerator, "
                  "denominator} first (several times per beat)")
    try:
        za = _endpoint(request, model, "a")
        zb = _endpoint(request, model, "b")
    except Exception as e:  # CodecError from notes that do not fit
        if isinstance(e, OpError):
            raise
        raise bad(f"the notes do not fit model {model.name!r}: {e}") from None
    rid = request.id
    bar_len = int(model.info["bars"]) * BEATS_PER_BAR
    holder = {}

    def decode(cancelled):
        zs = _latent.interpolate(za, zb, steps, method)
        if cancelled.is_set():
            return zs, []
        seqs = model.decode(zs, temperature=temperature, seed=0 if seed is None else seed)
        return zs, seqs

    def on_step(slot, step, bar, notes, z):
        job = holder["job"]
        session.latent[model.name] = np.asarray(z, dtype=np.float32)
        _send_seq(session, rid, model, notes, step, steps,
                  {"morph": job.id, "step": step, "slot": slot, "bar": bar, "bars_per_step": bars_per_step})
        HUB.pattern(session, notes, bar, min(bar_len, bars_per_step * BEATS_PER_BAR))

    def on_done(reason):
        if reason.startswith("error"):
            session.error(rid, "internal", f"morph decode failed: {reason[7:]}")
        else:
            session.send(DONE, rid)

    job = _wrap(lambda: MorphJob(live.transport, mode, bars_per_step, decode, on_step, on_done,
                                 start_bar=start_bar, lookahead_bars=lookahead))
    holder["job"] = job
    old = live.replace_morph(job)
    job.start()
    return {"morph": job.id, "steps": steps, "mode": mode, "bars_per_step": bars_per_step,
            "replaced": None if old is None else old.id}


@_ops.op("stop", serial=False)
def op_stop(session, request):
    """stop {"morph": id?}: cancel this client's morph (only that one if an id is given)."""
    live = client(session)
    morph_id = request.integer("morph", None, 0)
    job = live.stop_morph(morph_id)
    return {"stopped": None if job is None else job.id}


def stop_live(session, morph_id: int | None = None) -> int | None:
    """Hook for the core `stop` op: cancel this client's morph (all of it, or only `morph_id`)."""
    live = session.state.get(STATE_KEY)
    if live is None:
        return None
    job = live.stop_morph(morph_id)
    return None if job is None else job.id


class HardwareClient:
    """Stands in for an OSC client when hardware knobs move a latent nobody else owns."""

    def __init__(self):
        self.latent: dict = {}
        self.state: dict = {}
        self.label = "midi"

    def send(self, *args) -> bool:
        return True

    def sequence_messages(self, *args, **kwargs) -> list:
        return []

    def error(self, *args) -> None:
        pass

    def on_close(self, fn) -> None:
        pass


def _knob_worker(session, live: LiveClient) -> LatestOnly:
    if live.knob_worker is None:
        def run(job):
            model, rid, extra, temperature, seed = job
            with live.lock:
                base = session.latent.get(model.name)
                knobs = dict(live.knobs.get(model.name, {}))
            z = np.asarray(base, dtype=np.float64).copy()
            dirs = {d["name"]: d for d in direction_table(model.info)}
            for name, value in knobs.items():
                z += KNOB_RANGE * value * np.asarray(dirs[name]["vector"], dtype=np.float64)
            try:
                notes = model.decode(z.astype(np.float32)[None], temperature=temperature, seed=seed)[0]
            except Exception as e:  # noqa: BLE001
                session.error(rid, "internal", f"knob decode failed: {e}")
                return
            clock = HUB.midi.clock() if (session is HUB.hardware and HUB.midi is not None) else live.transport
            bar = clock.next_bar() if clock is not None and clock.known else None
            _send_seq(session, rid, model, notes, 0, 1,
                      dict(extra, bar=bar, knobs={k: round(v, 6) for k, v in knobs.items()}), done=True)
            HUB.pattern(session, notes, bar, int(model.info["bars"]) * BEATS_PER_BAR)
        live.knob_worker = LatestOnly(run, name="knob")
    return live.knob_worker


def move_knob(session, model, direction, value: float, request_id: int = 0,
              temperature: float = 0.0, seed: int | None = 0) -> dict:
    """Set a knob of `session` and queue a decode (coalesced: only the latest value is decoded)."""
    live = client(session) if not isinstance(session, HardwareClient) else _hardware_live(session)
    index, d = resolve_direction(model.info, direction)
    if np.asarray(d["vector"]).shape != (model.z_size,):
        raise LiveError(f"direction {d['name']!r} has a vector of the wrong size for model {model.name!r}")
    value = knob_value(value)
    if model.name not in session.latent:
        raise LiveError(f"no live latent for model {model.name!r} yet: start a morph, or encode/decode "
                        "a sequence first (the knobs move that position)")
    with live.lock:
        live.knobs.setdefault(model.name, {})[d["name"]] = value
    extra = {"knob": {"direction": d["name"], "index": index, "value": value}}
    _knob_worker(session, live).submit((model, request_id, extra, temperature, seed))
    return {"direction": d["name"], "index": index, "value": value}


def _hardware_live(hw: HardwareClient) -> LiveClient:
    live = hw.state.get(STATE_KEY)
    if live is None:
        live = LiveClient(hw.send)
        hw.state[STATE_KEY] = live
    return live


@_ops.op("knob", serial=False)
def op_knob(session, request):
    model = request.model()
    direction = request.fields.get("direction")
    value = request.fields.get("value")
    temperature = request.temperature(0.0)
    seed = request.seed()
    return _wrap(lambda: move_knob(session, model, direction, value, request.id, temperature,
                                   0 if seed is None else seed))


@_ops.op("directions", serial=False)
def op_directions(session, request):
    """The model's latent directions (names, indices, measured effects) for building a knob UI."""
    model = request.model()
    out = []
    for i, d in enumerate(direction_table(model.info)):
        out.append({"index": i, "name": d["name"], "kind": d.get("kind", "attribute"),
                    "effect": d.get("effect", {}).get("per_unit", d.get("effect", {}))})
    return {"model": model.name, "knob_range": KNOB_RANGE, "directions": out}


def _on_hardware_knob(server, binding, value: float) -> None:
    model = server.models.get(binding.model)
    if model is None:
        log.warning("knobs.toml names model %r, which is not loaded", binding.model)
        return
    target = HUB.focus
    if target is None or binding.model not in target.latent:
        if HUB.hardware is None:
            HUB.hardware = HardwareClient()
        target = HUB.hardware
        if binding.model not in target.latent:
            seed = HUB.midi.knobs.seed if HUB.midi is not None and HUB.midi.knobs is not None else 0
            target.latent[binding.model] = np.asarray(model.sample_z(1, seed)[0], dtype=np.float32)
    try:
        move_knob(target, model, binding.direction, value, 0)
    except LiveError as e:
        log.warning("knob cc %d: %s", binding.cc, e)


def setup_midi(server, midi_in: str | None = None, midi_out: str | None = None, clock_in: str | None = None,
               knobs_path: str | None = None, api: str | None = None, record: bool = False):
    """Open the MIDI side for the daemon (`--midi-in/--midi-out/--midi-clock-in/--knobs/--midi-api`).

    Call once after the models are loaded; `close_midi()` at shutdown (registered as a shutdown hook)."""
    from .midi_live import KnobMap, MidiLive
    knobs = KnobMap.load(knobs_path) if knobs_path else None
    if knobs is not None:
        missing = sorted({b.model for b in knobs.bindings} - set(server.models))
        if missing:
            raise LiveError(f"{knobs_path}: model(s) {missing} are not loaded (loaded: {sorted(server.models)})")
        if not midi_in:
            raise LiveError("--knobs needs --midi-in (the port the controller is on)")
    HUB.midi = MidiLive(midi_in=midi_in, midi_out=midi_out, clock_in=clock_in, knobs=knobs, api=api,
                        on_knob=lambda b, v: _on_hardware_knob(server, b, v),
                        transport_fn=HUB.transport, record=record)
    return HUB.midi


@_ops.on_shutdown
def close_midi() -> None:
    midi, HUB.midi = HUB.midi, None
    if midi is not None:
        midi.close()


# ---- daemon command line (called by bridge.server for each op module that defines them) ----------
def add_arguments(parser) -> None:
    g = parser.add_argument_group("live MIDI (bridge.live)")
    g.add_argument("--midi-in", default=None, metavar="NAME",
                   help="MIDI input port: knob control changes (see --knobs) and MIDI clock")
    g.add_argument("--midi-clock-in", default=None, metavar="NAME",
                   help="a separate MIDI input port that only brings MIDI clock")
    g.add_argument("--midi-out", default=None, metavar="NAME",
                   help="open a virtual MIDI output port NAME playing the current pattern")
    g.add_argument("--knobs", default=None, metavar="TOML",
                   help="knob map: MIDI CC numbers -> latent directions (see knobs.example.toml)")
    g.add_argument("--midi-api", default=None, choices=sorted(("alsa", "jack", "coremidi", "winmm")),
                   help="rtmidi API (default: the platform's; also MIDO_BACKEND)")


def configure(server, args) -> None:
    """Open the MIDI side if any MIDI option was given (after the models are loaded)."""
    if any(getattr(args, k, None) for k in ("midi_in", "midi_clock_in", "midi_out", "knobs")):
        setup_midi(server, args.midi_in, args.midi_out, args.midi_clock_in, args.knobs, args.midi_api)
