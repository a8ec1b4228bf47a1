"""The feedback thread: every 1/rate_hz seconds, what changed on each surface goes back to it.

Each round, for every surface session: the MIDI clock (when one comes in) is fed into the session's
transport, so its morphs step on the DAW's bars; then its outbox sends what changed since the last
round (values, labels, status, the bar), a bounded number of messages. A fader moved 500 times a
second still gets at most rate_hz rounds of feedback a second, and only its latest value.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

from ..live import ops as live_ops

log = logging.getLogger("bridge.surface")


def position(session) -> dict:
    """Where the music is for `session`: the clock MIDI out follows (MIDI clock when it ticks, else the
    session's own transport). {"bar": None, ...} before there is one."""
    hub = live_ops.HUB
    clock = hub.midi.follower if hub.midi is not None and hub.midi.follower.active else None
    if clock is None:
        live = session.state.get(live_ops.STATE_KEY)
        clock = live.transport if live is not None else None
    if clock is None or not clock.known:
        return {"bar": None, "beat": None, "tempo": None, "playing": False}
    beat = clock.beat()
    return {"bar": int(beat // 4), "beat": round(beat, 4), "tempo": round(clock.tempo, 3), "playing": clock.playing}


def feed_midi_clock(session) -> None:
    """Copy the incoming MIDI clock into the session's transport (as Live's device sends `transport`),
    without touching which client leads MIDI out."""
    hub = live_ops.HUB
    live = session.state.get(live_ops.STATE_KEY)
    f = hub.midi.follower if hub.midi is not None else None
    if live is None or f is None or not f.known:
        return
    live.transport.update({"tempo": f.tempo, "beat": f.beat(), "playing": f.playing})


class Feedback:
    """Sends each surface its changes, `rate_hz` rounds a second, from one thread."""

    def __init__(self, sessions: Callable[[], list], models: Callable[[], list], rate_hz: float):
        """Args:
            sessions: the surface sessions now. models: the loaded model names. rate_hz: rounds a second.
        """
        self.sessions, self.models, self.period = sessions, models, 1.0 / rate_hz
        self.rounds = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def round(self) -> int:
        """One round for every session; returns the messages sent."""
        sent = 0
        models = self.models()
        for session in self.sessions():
            try:
                feed_midi_clock(session)
                snap = session.surface.snapshot()
                snap["models"] = models
                sent += session.outbox.flush(snap, position(session))
            except Exception:  # noqa: BLE001 - one surface's failure must not stop the others' feedback
                log.exception("feedback to %s failed", session.label)
        self.rounds += 1
        return sent

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="surface-feedback", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.round()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
