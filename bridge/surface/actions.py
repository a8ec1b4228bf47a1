"""Typed surface actions -> the daemon's ops, run on the surface's own session.

Nothing musical is reimplemented here: Generate is a prior sample (`Model.sample`) and the `encode`
op on it (its latent is what the knobs move), a knob is the `knob` op, A/B learn the `encode` op, Morph the `morph` / `stop`
ops, the 2-D pad the `decode` op on a cell of `bridge.core.latent.palette` over the corners A, B, C, D.
Each op is called with a synthetic `Request` in the scheduler (`session.background`, in the model's
lane, so a surface queues like any client and its actions keep their order). State-only actions
(model, temperature) apply at once, in the receive thread, so the actions after them see them.
Continuous controls (knobs, the pad) are coalesced per control: while one decodes only the latest
value waits.
"""
from __future__ import annotations

import itertools
import logging
import threading

import numpy as np

from ..core import latent
from ..core.errors import BadRequest, BridgeError, UnknownOp
from ..core.notes import BEATS_PER_BAR, Note
from ..daemon.protocol import error_reply
from ..daemon.registry import Request, Sequences, track_layout
from ..live import ops as live_ops
from ..live.knobs import LatestOnly
from . import values
from .config import INPUTS, KNOBS, SurfaceConfig
from .phrase import PhraseRecorder
from .session import SurfaceSession

log = logging.getLogger("bridge.surface")

PAD_GRID = 8                 # the pad is an 8 x 8 palette grid (the palette op's largest by default)
_IDS = itertools.count(1)    # synthetic request ids (replies are captured, never sent)


class OpCaller:
    """Calls a registry op on a session with a synthetic request, the way the server would."""

    def __init__(self, server):
        self.server = server

    def __call__(self, session, op: str, fields: dict):
        """Run op `op` with `fields` (already typed) on `session`, in the calling thread.

        Returns:
            The handler's result: a dict, a Sequences, or None (it replied itself).

        Raises:
            UnknownOp: the daemon does not serve `op`. BridgeError: what the op raises.
        """
        spec = self.server.ops.get(op)
        if spec is None:
            raise UnknownOp(f"this daemon does not serve op {op!r}")
        return spec.handler(session, Request(self.server, op, next(_IDS), dict(fields), tuple(session.key)))


class Actions:
    """The surface actions (config.INPUTS) for every surface session."""

    def __init__(self, server, config: SurfaceConfig, recorder: PhraseRecorder | None = None):
        """Args:
            server: the BridgeServer (models, limits, ops).
            config: the surface config (tempo, morph settings).
            recorder: the phrases played into MIDI in (None: no MIDI in; learn takes the pattern playing).
        """
        self.server = server
        self.config = config
        self.recorder = recorder
        self.call = OpCaller(server)
        self._latest: dict[tuple, LatestOnly] = {}
        self._lock = threading.Lock()

    # ---- dispatch ------------------------------------------------------------------------------
    def dispatch(self, session: SurfaceSession, action: str, args: list, address: str | None = None) -> None:
        """Act on one typed message. Checks run here; the work is queued.

        Args:
            session: the surface's session. action: a key of config.INPUTS. args: the OSC arguments.
            address: the address as the surface sent it (for messages).

        Raises:
            BadRequest: an unknown action, arguments of the wrong type or range, no model chosen.
        """
        address = address or action
        if action.startswith("knob/") and action in INPUTS:
            (value,) = values.unit(address, args)
            self.knob(session, int(action.split("/")[1]), value)
        elif action == "model":
            names = sorted(self.server.models)
            self.set_model(session, values.model_name(address, args, names))
        elif action == "temperature":
            session.surface.set(temperature=values.number(address, args, 0.0, self.server.limits.max_temperature))
        elif action == "xy":
            x, y = values.unit(address, args, 2)
            self.pad(session, x, y)
        elif action in ("sample", "morph/go", "morph/stop", "a/learn", "b/learn"):
            if values.pressed(address, args):
                {"sample": self.generate, "morph/go": self.morph, "morph/stop": self.stop,
                 "a/learn": lambda s: self.learn(s, "a"), "b/learn": lambda s: self.learn(s, "b")}[action](session)
        else:
            raise BadRequest(f"unknown surface address {address[:80]!r}")

    # ---- plumbing ------------------------------------------------------------------------------
    def model(self, session: SurfaceSession):
        """The surface's current model.

        Raises:
            BadRequest: none chosen, or it is no longer loaded.
        """
        name = session.surface.get("model")
        model = self.server.models.get(name) if name else None
        if model is None:
            raise BadRequest("no model chosen: send the model address a model name first")
        return model

    def _run(self, session: SurfaceSession, lane: str, what: str, fn) -> None:
        """Queue fn() as the session's work in `lane`; a failure becomes the surface's status."""
        def guarded():
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - every failure reaches the surface as its status
                self.report(session, e, what)
        try:
            session.background(lane, guarded)
        except BridgeError as e:         # Busy: this surface has too much queued
            self.report(session, e, what)

    def _latest_only(self, session: SurfaceSession, control: str, lane: str, what: str):
        """A coalescing runner for one continuous control of one session."""
        key = (id(session), control)
        with self._lock:
            runner = self._latest.get(key)
            if runner is None:
                def run(fn):
                    try:
                        session.background(lane, fn).wait()
                    except Exception as e:  # noqa: BLE001 - reported as the status
                        self.report(session, e, what)
                runner = self._latest[key] = LatestOnly(run, name=f"surface-{control}")
                session.on_close(lambda s: self._forget(key))
        return runner

    def _forget(self, key) -> None:
        with self._lock:
            runner = self._latest.pop(key, None)
        if runner is not None:
            runner.cancel_pending()

    @staticmethod
    def report(session: SurfaceSession, exc: BaseException, what: str) -> None:
        """Show a failure as the surface's status ("error: ..."); log bugs with their traceback."""
        if not isinstance(exc, BridgeError):
            log.error("surface %s failed for %s", what, session.label, exc_info=(type(exc), exc, exc.__traceback__))
        code, message = error_reply(exc, what)
        session.surface.set(status=f"error: {message}" if code != "internal" else f"error: internal: {message}")

    def live(self, session: SurfaceSession):
        """The session's live state (bridge.live.ops.LiveClient), with a free-running transport at the
        config's tempo when it has none yet (MIDI clock, when present, is fed in by the feedback)."""
        live = session.state.get(live_ops.STATE_KEY)
        if live is None or not live.transport.known:
            self.call(session, "transport", {"tempo": self.config.tempo, "beat": 0.0, "playing": True})
            live = session.state[live_ops.STATE_KEY]
        return live

    def play(self, session: SurfaceSession, model, rows: list) -> None:
        """A pattern a core op made: show it and play it on MIDI out from the next bar (the live ops
        play their own through bridge.live.ops.HUB)."""
        live = self.live(session)
        hub = live_ops.HUB
        clock = hub.midi.clock() if hub.midi is not None else live.transport
        bar = clock.next_bar() if clock is not None and clock.known else None
        bars = int(model.info["bars"])
        session.surface.set_pattern(model.name, rows, bar, bars)
        _, drum_track = track_layout(model)
        notes = []
        for r in rows:
            n = Note.from_row(r)
            notes.append(Note(n.pitch, n.start, n.end, n.velocity, n.track, True) if n.track == drum_track else n)
        hub.touch(session)                   # the surface that acted leads MIDI out
        hub.pattern(session, notes, bar, bars * BEATS_PER_BAR)

    # ---- the actions ---------------------------------------------------------------------------
    def set_model(self, session: SurfaceSession, name: str) -> None:
        """Switch the surface to model `name`; its knob labels come from the `directions` op."""
        session.surface.set(model=name, status=f"model {name}")
        self.labels(session, name)

    def labels(self, session: SurfaceSession, name: str) -> None:
        def work():
            table = self.call(session, "directions", {"model": name})["directions"]
            session.surface.set_labels(name, [d["name"] for d in table[:KNOBS]])
        self._run(session, "", "directions", work)

    def generate(self, session: SurfaceSession) -> None:
        """A prior sample (`Model.sample`: the package's sampler when it ships a pair), encoded (the
        `encode` op remembers its latent: the knobs move from it)."""
        model = self.model(session)
        temperature = session.surface.get("temperature")
        seed = int(np.random.default_rng().integers(0, 2 ** 31))

        def work():
            rows = [n.to_row() for n in model.sample(1, temperature=temperature, seed=seed)[0]]
            self.call(session, "encode", {"model": model.name, "notes": rows})
            turned = [(i + 1, v) for i, v in enumerate(session.surface.knob_values(model.name)) if v != 0.5]
            if turned:      # the knobs keep their offsets: play the new latent moved by them
                self._knob_op(session, model, *turned[0])
            else:
                self.play(session, model, rows)
            session.surface.set(status=f"generated ({model.name}, seed {seed})")
        self._run(session, model.name, "generate", work)

    def knob(self, session: SurfaceSession, index: int, value: float) -> None:
        """Knob `index` (1..8) to `value` (0..1 = the knob op's -1..1 along direction index-1)."""
        model = self.model(session)
        session.surface.knob(model.name, index, value)
        temperature = session.surface.get("temperature")

        def work():
            if model.name not in session.latent:          # nothing to move yet: start from a sample
                z = model.prior_latents(1, 0)[0]
                self.call(session, "decode", {"model": model.name, "z": [float(v) for v in z]})
            self._knob_op(session, model, index, value, temperature)
        self._latest_only(session, f"knob/{index}", model.name, "knob").submit(work)

    def _knob_op(self, session, model, index: int, value: float, temperature: float | None = None) -> None:
        self.live(session)
        t = session.surface.get("temperature") if temperature is None else temperature
        self.call(session, "knob", {"model": model.name, "direction": index - 1, "value": 2.0 * value - 1.0,
                                    "temperature": t, "seed": 0})

    def learn(self, session: SurfaceSession, slot: str) -> None:
        """Endpoint `slot` (a / b): the last phrase played into MIDI in (encoded by the `encode` op),
        else the latent playing now."""
        model = self.model(session)
        bars = int(model.info["bars"])
        phrase = self.recorder.phrase(bars) if self.recorder is not None else None

        def work():
            if phrase:
                z = self.call(session, "encode", {"model": model.name, "notes": phrase})["z"]
                what = f"{len(phrase)} notes from MIDI in"
            elif model.name in session.latent:
                z = [float(v) for v in session.latent[model.name]]
                what = "the pattern playing"
            else:
                raise BadRequest(f"nothing to learn as {slot.upper()}: play a phrase into MIDI in, or Generate first")
            session.surface.set_endpoint(slot, model.name, z)
            session.surface.set(status=f"{slot.upper()} learned: {what}")
        self._run(session, model.name, f"{slot}/learn", work)

    def morph(self, session: SurfaceSession) -> None:
        """The `morph` op from A to B (config.morph_steps, morph_mode), one model length per step."""
        model = self.model(session)
        a, b = session.surface.endpoint("a", model.name), session.surface.endpoint("b", model.name)
        if a is None or b is None:
            raise BadRequest(f"morph needs A and B for {model.name}: learn them first (a/learn, b/learn)")
        temperature = session.surface.get("temperature")

        def work():
            self.live(session)
            ok = self.call(session, "morph", {"model": model.name, "a": a, "b": b, "steps": self.config.morph_steps,
                                              "mode": self.config.morph_mode, "temperature": temperature})
            session.surface.set(status=f"morph {ok['morph']}: {ok['steps']} steps, {ok['mode']}")
        self._run(session, model.name, "morph", work)

    def stop(self, session: SurfaceSession) -> None:
        """The `stop` op: end this surface's morph."""
        name = session.surface.get("model") or ""

        def work():
            ok = self.call(session, "stop", {})
            session.surface.set(status="morph stopped" if ok["stopped"] is not None else "no morph to stop")
        self._run(session, name if name in self.server.models else "", "stop", work)

    def pad(self, session: SurfaceSession, x: float, y: float) -> None:
        """The 2-D palette: the cell nearest (x, y) of an 8 x 8 bilinear grid over the corners A (top
        left), B (top right), C, D (bottom), decoded. A and B are the learned endpoints; a corner not
        learned is drawn from the prior, fixed per surface (the pad stays put while you play it)."""
        model = self.model(session)
        session.surface.set(xy=(x, y))
        col, row = round(x * (PAD_GRID - 1)), round(y * (PAD_GRID - 1))
        temperature = session.surface.get("temperature")

        def work():
            prior = model.prior_latents(4, sum(map(ord, session.label)))   # fixed per surface: a stable pad
            corners = [np.asarray(prior[i] if z is None else z, dtype=np.float32)
                       for i, z in enumerate(session.surface.endpoint(slot, model.name) for slot in "abcd")]
            z = latent.palette(np.stack(corners), PAD_GRID)[row * PAD_GRID + col]
            result = self.call(session, "decode", {"model": model.name, "z": [float(v) for v in z],
                                                   "temperature": temperature, "seed": 0})
            if isinstance(result, Sequences):
                self.play(session, model, result.rows[0])
                session.surface.set(status=f"pad cell {row},{col}")
        self._latest_only(session, "xy", model.name, "pad").submit(work)
