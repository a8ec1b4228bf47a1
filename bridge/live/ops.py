"""The live ops of the daemon: transport, morph, stop, knob, directions; and the MIDI side.

Per client (OSC session) a `LiveClient` keeps the transport, the running morph and the knob values;
it is kept in `session.state["live.client"]` and closed with the session. `HUB` is the daemon-wide
live state: the MIDI side (`--midi-in/--midi-out/--midi-clock-in/--knobs`, bridge.live.midi) and the
client it follows. Hardware knobs that move a latent no OSC client owns act through a
`HardwareClient`, which implements the same `ClientSession` interface as an OSC session.

The handlers are marked with bridge.daemon.registry.op; `python -m bridge serve` includes this module
in its OpRegistry and calls `add_arguments` / `configure` for the MIDI options.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import numpy as np

from ..core import latent
from ..core.directions import direction_table, direction_vector, resolve
from ..core.errors import BadRequest, BridgeError, LiveError, TooLarge
from ..core.notes import BEATS_PER_BAR
from ..daemon.palette_ops import palette_spread, requested_palette
from ..daemon.protocol import DONE, SEQ
from ..daemon.registry import encode_notes, notes_to_rows, on_shutdown, op
from ..daemon.scales import request_mask
from ..daemon.session import ClientSession
from .clock import Clock, Transport
from .knobs import KNOB_RANGE, KnobMap, LatestOnly, knob_value
from .morph import DEFAULT_LOOKAHEAD_BARS, MAX_BAR, MODES, MorphJob

log = logging.getLogger("bridge.live")

STATE_KEY = "live.client"
MIN_LEASE_S = 2.0          # a stream's lease is never shorter than this (999 bpm: 8 bars are 1.9 s)


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
        # model name -> {direction name: its vector}, resolved when the knob moved (a palette's
        # direction may be forgotten while the knob still holds its value)
        self.knob_vectors: dict[str, dict[str, np.ndarray]] = {}
        self.knob_worker: LatestOnly | None = None

    def replace_morph(self, job: MorphJob | None) -> MorphJob | None:
        with self.lock:
            old, self.morph = self.morph, job
        if old is not None:
            old.cancel()
        return old

    def forget(self, job: MorphJob) -> None:
        """A morph ended by itself (done, expired, failed): it is no longer this client's morph."""
        with self.lock:
            if self.morph is job:
                self.morph = None

    def supersede_decoding(self) -> MorphJob | None:
        """Cancel the running morph if it is still decoding (a new morph is about to replace it):
        its decode stops at the next step and frees the model for the new one."""
        with self.lock:
            old = self.morph
            if old is None or old.seqs is not None or old.finished.is_set():
                return None
            self.morph = None
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


class LiveHub:
    """Daemon-wide live state: the MIDI side (if configured) and which client it follows."""

    def __init__(self):
        self.midi = None                 # bridge.live.midi.MidiLive
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


def _send_seq(session, request_id: int, model, notes, index: int, count: int, extra: dict,
              done: bool = False) -> None:
    """One sequence as /bridge/seq message(s) with `index` of `count` (and /bridge/done), in the
    session's notes_format (each message: id, index, count, then the JSON or the numeric form)."""
    msgs = session.sequence_messages(request_id, model.name, int(model.info["bars"]), [notes_to_rows(notes)],
                                     [dict(extra, index=index)])
    for msg in msgs:
        session.send(SEQ, msg[0], index, count, *msg[3:])
    if done:
        session.send(DONE, request_id)


# ---- transport and morph ------------------------------------------------------------------------

@op("transport", serial=False)
def op_transport(session, request):
    """transport {tempo, beat, playing, numerator?, denominator?} -> the extrapolated position
    (also as plain numbers: `/bridge/transport id tempo beat [playing numerator denominator]`,
    answered `/bridge/ok id tempo beat bar playing`; bridge.daemon.typed)"""
    live = client(session)
    live.transport.update(request.fields)          # LiveError: bad_request
    return live.transport.snapshot()


def _endpoint(request, model, key: str) -> Callable[[], np.ndarray]:
    """The field checked now; its latent computed later, in the model's lane (a note list is
    encoded there, so the handler never waits for the model)."""
    v = request.fields.get(key)
    if isinstance(v, list) and v and not isinstance(v[0], list):
        z = request.z(model, key)                          # a latent vector
        return lambda: z
    notes = request.notes(model, key)
    return lambda: encode_notes(model, [notes])[0]


def lease_seconds(request, live: LiveClient) -> float:
    """How long a live stream of this client lives without a request from it: Limits.stream_lease_bars
    bars at the client's tempo, at least MIN_LEASE_S."""
    bars = getattr(request.limits, "stream_lease_bars", 8)
    return max(MIN_LEASE_S, bars * BEATS_PER_BAR * 60.0 / max(live.transport.tempo, 1e-3))


def _stream_ended(request, reason: str) -> None:
    streams = getattr(request.server, "streams", None)
    if streams is not None and reason in ("expired", "failed"):
        streams.count_end(reason)


@op("morph", serial=False)
def op_morph(session, request):
    """morph {model, a, b | palette (+ spread), steps?, bars_per_step?, mode?, ...} -> {morph: id, ...},
    then each step as /bridge/seq ahead of its bar, then /bridge/done (docs/osc-protocol.md); with a
    palette and no `b`, the morph goes toward a draw of the player's palette"""
    live = client(session)
    model = request.model()
    steps = request.integer("steps", 8, 2, request.limits.max_steps, over=TooLarge)
    bars_per_step = request.integer("bars_per_step", int(model.info["bars"]), 1, 64)
    mode = request.string("mode", "once", MODES)
    temperature = request.temperature(0.0)
    seed = request.seed()
    method = request.string("method", "slerp", ("slerp", "lerp"))
    start_bar = request.integer("start_bar", None, 0, MAX_BAR)
    lookahead = request.number("lookahead_bars", DEFAULT_LOOKAHEAD_BARS, 1.0, 16.0)
    mask = request_mask(request, model)     # the song's scale (melody and bass tracks), or None
    if not live.transport.known:
        raise BadRequest("morph needs the song position: send 'transport' {tempo, beat, playing, numerator, "
                         "denominator} first (several times per beat)")
    superseded = live.supersede_decoding()
    end_a = _endpoint(request, model, "a")
    mine = requested_palette(request, model)
    if mine is not None and not request.has("b"):      # toward a draw of the player's palette
        zb = mine.sample(1, palette_spread(request), np.random.default_rng(seed))[0]
        end_b = lambda: zb  # noqa: E731
    else:
        end_b = _endpoint(request, model, "b")
    rid = request.id
    bar_len = int(model.info["bars"]) * BEATS_PER_BAR
    holder = {}

    def on_step(slot, step, bar, notes, z):
        job = holder["job"]
        session.latent[model.name] = np.asarray(z, dtype=np.float32)
        _send_seq(session, rid, model, notes, step, steps,
                  {"morph": job.id, "step": step, "slot": slot, "bar": bar, "bars_per_step": bars_per_step})
        HUB.pattern(session, notes, bar, min(bar_len, bars_per_step * BEATS_PER_BAR))

    def on_done(reason):
        holder["slot"].release()
        job = holder["job"]
        live.forget(job)
        if reason.startswith("error"):
            _stream_ended(request, "failed")
            if not isinstance(job.error, BridgeError):     # a bug: keep the traceback
                log.error("morph %s of %s failed: %s", job.id, session.label, reason,
                          exc_info=(type(job.error), job.error, job.error.__traceback__) if job.error else None)
            session.fail(rid, job.error, "morph failed")
        else:
            if reason == "expired":
                _stream_ended(request, "expired")
                log.info("morph %s of %s ended: its lease expired (no request from the client for %.1f s)",
                         job.id, session.label, lease_seconds(request, live))
            session.send(DONE, rid)

    job = MorphJob(live.transport, mode, bars_per_step, lambda cancelled: holder["decode"].wait(), on_step,
                   on_done, start_bar=start_bar, lookahead_bars=lookahead,
                   lease=lambda: session.lease_alive(lease_seconds(request, live)))
    holder["job"] = job
    holder["slot"] = session.open_stream("morph")              # Busy over the stream caps

    def work():   # in the model's lane: stops between decode steps once the morph is cancelled
        zs = latent.interpolate(end_a(), end_b(), steps, method)
        return zs, model.decode(zs, temperature=temperature, seed=0 if seed is None else seed,
                                cancel=job.cancelled, mask=mask)
    try:
        holder["decode"] = session.background(model.name, work)   # Busy when the client's queue is full
    except BaseException:
        holder["slot"].release()
        raise
    old = live.replace_morph(job) or superseded
    job.start()
    return {"morph": job.id, "steps": steps, "mode": mode, "bars_per_step": bars_per_step,
            "replaced": None if old is None else old.id}


@op("stop", serial=False)
def op_stop(session, request):
    """stop {"morph": id?}: cancel this client's morph (only that one if an id is given)."""
    live = client(session)
    morph_id = request.integer("morph", None, 0)
    job = live.stop_morph(morph_id)
    return {"stopped": None if job is None else job.id}


def stop_live(session, morph_id: int | None = None) -> int | None:
    """Cancel a session's morph (all of it, or only `morph_id`) without creating live state."""
    live = session.state.get(STATE_KEY)
    if live is None:
        return None
    job = live.stop_morph(morph_id)
    return None if job is None else job.id


# ---- knobs --------------------------------------------------------------------------------------

class HardwareClient(ClientSession):
    """The ClientSession of hardware knobs (knobs.toml) when they move a latent no OSC client owns:
    it keeps a latent and live state like a session, and its replies go nowhere."""

    def __init__(self):
        self.latent: dict = {}
        self.state: dict = {}
        self.label = "midi"

    def send(self, address: str, *args) -> bool:
        return True

    def on_close(self, fn) -> None:
        pass

    def sequence_messages(self, *args, **kwargs) -> list:
        return []            # nothing is sent: skip encoding the replies


def _live_of(session) -> LiveClient:
    """The LiveClient of an OSC session (it becomes the one MIDI follows) or of a HardwareClient."""
    if not isinstance(session, HardwareClient):
        return client(session)
    live = session.state.get(STATE_KEY)
    if live is None:
        live = LiveClient(session.send)
        session.state[STATE_KEY] = live
    return live


def _knob_worker(session, live: LiveClient) -> LatestOnly:
    if live.knob_worker is None:
        def decode_and_send(model, rid, extra, temperature, seed, mask=None):
            with live.lock:
                base = session.latent.get(model.name)
                knobs = dict(live.knobs.get(model.name, {}))
                vectors = dict(live.knob_vectors.get(model.name, {}))
            z = np.asarray(base, dtype=np.float64).copy()
            for name, value in knobs.items():
                z += KNOB_RANGE * value * vectors[name].astype(np.float64)
            slot = session.open_stream("knob")                 # Busy over the stream caps
            try:
                # in the model's lane, counted against the client's queue (Busy when it is full)
                notes = session.background(model.name, lambda: model.decode(
                    z.astype(np.float32)[None], temperature=temperature, seed=seed, mask=mask)[0]).wait()
            finally:
                slot.release()
            clock = HUB.midi.clock() if (session is HUB.hardware and HUB.midi is not None) else live.transport
            bar = clock.next_bar() if clock is not None and clock.known else None
            _send_seq(session, rid, model, notes, 0, 1,
                      dict(extra, bar=bar, knobs={k: round(v, 6) for k, v in knobs.items()}), done=True)
            HUB.pattern(session, notes, bar, int(model.info["bars"]) * BEATS_PER_BAR)

        def run(job):
            try:
                decode_and_send(*job)
            except Exception as e:  # noqa: BLE001 - every failure reaches the client and ends the stream
                if not isinstance(e, BridgeError):
                    log.error("knob decode of %s failed", session.label, exc_info=(type(e), e, e.__traceback__))
                try:
                    session.fail(job[1], e, "knob decode failed")
                except Exception:  # noqa: BLE001 - the error reply itself failed: nothing else to do
                    log.exception("knob error reply failed")
        live.knob_worker = LatestOnly(run, name="knob")
    return live.knob_worker


def knob_direction(model, direction, palette=None) -> tuple[int, str, np.ndarray]:
    """(index, name, vector) of a knob: the model's direction (a name or an index), or with a
    palette its principal direction `direction` (an index; named "<palette>:<index>").

    Raises:
        DirectionError: no such direction. ModelError: its vector does not fit the model.
        BadRequest: a palette direction that is not an index of the palette.
    """
    if palette is None:
        index, d = resolve(model.info, direction)
        return index, d["name"], direction_vector(model.info, index, model.z_size)
    if isinstance(direction, bool) or not isinstance(direction, int):
        raise BadRequest(f"a palette's knob is the index of one of its directions, got {direction!r}")
    if not 0 <= direction < len(palette.directions):
        raise BadRequest(f"palette {palette.name!r} has directions 0..{len(palette.directions) - 1}, "
                         f"not {direction}")
    return direction, f"{palette.name}:{direction}", palette.direction(direction)


def move_knob(session: ClientSession, model, direction, value: float, request_id: int = 0,
              temperature: float = 0.0, seed: int | None = 0, mask=None, palette=None) -> dict:
    """Set a knob of `session` and queue a decode (coalesced: only the latest value is decoded).
    `mask`: the logit mask of a scale (bridge.daemon.scales.request_mask), or None; `palette`: the
    knob is that palette's direction `direction` (knob_direction).

    Raises:
        DirectionError: no such direction. ModelError: its vector does not fit the model.
        LiveError: a value outside -1..1, or no latent of this model to move yet.
    """
    live = _live_of(session)
    index, name, vector = knob_direction(model, direction, palette)
    value = knob_value(value)
    if model.name not in session.latent:
        raise LiveError(f"no live latent for model {model.name!r} yet: start a morph, or encode/decode "
                        "a sequence first (the knobs move that position)")
    with live.lock:
        live.knobs.setdefault(model.name, {})[name] = value
        live.knob_vectors.setdefault(model.name, {})[name] = vector
    extra = {"knob": {"direction": name, "index": index, "value": value}}
    _knob_worker(session, live).submit((model, request_id, extra, temperature, seed, mask))
    return {"direction": name, "index": index, "value": value}


@op("knob", serial=False)
def op_knob(session, request):
    """knob {model, direction, value, temperature?, seed?, scale?, palette?} -> {direction, index, value},
    then the moved pattern as /bridge/seq + /bridge/done (latest value wins); with a palette,
    `direction` is the index of one of its principal directions"""
    model = request.model()
    palette = requested_palette(request, model)
    direction = request.fields.get("direction")
    value = request.fields.get("value")
    temperature = request.temperature(0.0)
    seed = request.seed()
    mask = request_mask(request, model)
    return move_knob(session, model, direction, value, request.id, temperature, 0 if seed is None else seed, mask,
                     palette)


@op("directions", serial=False)
def op_directions(session, request):
    """The model's latent directions (names, indices, measured effects) for building a knob UI; with
    {palette: name}, also that palette's principal directions (kind "palette", knob them with
    knob {palette, direction: index})."""
    model = request.model()
    palette = requested_palette(request, model)
    out = []
    for i, d in enumerate(direction_table(model.info)):
        out.append({"index": i, "name": d["name"], "kind": d.get("kind", "attribute"),
                    "effect": d.get("effect", {}).get("per_unit", d.get("effect", {}))})
    reply = {"model": model.name, "knob_range": KNOB_RANGE, "directions": out}
    if palette is not None:
        reply["palette_directions"] = [{"index": i, "name": f"{palette.name}:{i}", "kind": "palette",
                                        "std": round(float(s), 6)} for i, s in enumerate(palette.scales)]
    return reply


# ---- the MIDI side ------------------------------------------------------------------------------

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
            target.latent[binding.model] = np.asarray(model.prior_latents(1, seed)[0], dtype=np.float32)
    try:
        move_knob(target, model, binding.direction, value, 0)
    except BridgeError as e:
        log.warning("knob cc %d: %s", binding.cc, e)


def setup_midi(server, midi_in: str | None = None, midi_out: str | None = None, clock_in: str | None = None,
               knobs_path: str | None = None, api: str | None = None, record: bool = False):
    """Open the MIDI side for the daemon (`--midi-in/--midi-out/--midi-clock-in/--knobs/--midi-api`).

    Call once after the models are loaded; `close_midi()` at shutdown (a shutdown hook of the registry).

    Raises:
        LiveError: knobs.toml names models that are not loaded, or --knobs without --midi-in.
    """
    from .midi import MidiLive
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


@on_shutdown
def close_midi() -> None:
    """Close the MIDI side (the daemon runs this at shutdown)."""
    midi, HUB.midi = HUB.midi, None
    if midi is not None:
        midi.close()


def add_arguments(parser) -> None:
    """The serve command's live MIDI options."""
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
    """Open the MIDI side if any MIDI option was given (a start hook: after the models are loaded)."""
    if any(getattr(args, k, None) for k in ("midi_in", "midi_clock_in", "midi_out", "knobs")):
        setup_midi(server, args.midi_in, args.midi_out, args.midi_clock_in, args.knobs, args.midi_api)
