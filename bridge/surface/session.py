"""SurfaceSession: the daemon session of one surface client (an OSC surface, a browser page).

It is a `bridge.daemon.session.Session` of its own (scheduling, stream caps, leases, close
callbacks), so the registry's ops run on it unchanged. What the ops send back (/bridge/ok, seq,
error) is not sent anywhere: `send` captures it into the surface's `SurfaceState` (the pattern a
knob or morph produced, an error as the status line); what the surface sees goes out through its
`Outbox`, in the surface's own vocabulary, from the feedback thread.
"""
from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod

from ..daemon.protocol import ERROR, SEQ
from ..daemon.session import Session
from .state import SurfaceState


class Outbox(ABC):
    """Where a surface's feedback goes (OSC datagrams, a WebSocket)."""

    @abstractmethod
    def flush(self, snapshot: dict, position: dict) -> int:
        """Send what changed since the last flush (at most a bounded number of messages).

        Args:
            snapshot: SurfaceState.snapshot() plus "models" (the loaded model names).
            position: {"bar", "beat", "tempo", "playing"} of the clock the MIDI out follows (bar None: none).

        Returns:
            The number of messages sent.
        """

    def close(self) -> None:
        """The surface is gone: stop sending."""


class SurfaceSession(Session):
    """One surface client: a daemon Session whose replies feed its SurfaceState.

    Attributes:
        surface: the SurfaceState the feedback shows. outbox: where feedback goes.
        lease_s: a live stream (a looping morph) of this surface lives this long without a message
            from it (surfaces are quiet between gestures; the OSC protocol's 8 bars would end it).
    """

    def __init__(self, server, key: tuple, outbox: Outbox, state: SurfaceState, lease_s: float = 600.0):
        """Args:
            server: the BridgeServer (scheduler, streams, statistics).
            key: (host, port) for OSC surfaces (the port feedback goes to), ("web", n) for a page.
            outbox: where feedback goes. state: the surface's state.
            lease_s: see the class attributes.
        """
        super().__init__(server, key, budget=None)
        self.outbox = outbox
        self.surface = state
        self.lease_s = lease_s
        self._parts: dict[tuple, list] = {}

    @property
    def client_key(self) -> tuple:
        """Each surface is a client of its own for scheduling and stream caps."""
        return ("surface",) + tuple(self.key)

    @property
    def label(self) -> str:
        return f"surface {self.key[0]}:{self.key[1]}"

    def send(self, address: str, *args) -> bool:
        """Capture an op's reply: a sequence becomes the surface's pattern, an error its status."""
        if address == SEQ and len(args) == 4:
            self._sequence(json.loads(args[3]))
        elif address == ERROR and len(args) == 3:
            self.surface.set(status=f"error: {args[2]}")
        return True

    def _sequence(self, obj: dict) -> None:
        key = (obj.get("morph"), obj.get("index"), obj.get("bar"))
        parts = self._parts.setdefault(key, [])
        parts.append(obj)
        if len(parts) < int(obj.get("parts", 1)):
            return                                   # a long sequence comes in parts: wait for all
        del self._parts[key]
        notes = [row for part in sorted(parts, key=lambda p: p.get("part", 0)) for row in part["notes"]]
        self.surface.set_pattern(obj["model"], notes, obj.get("bar"), int(obj["bars"]))
        if "morph" in obj:
            self.surface.set(status=f"morph step {obj['step'] + 1} at bar {obj['bar']}")

    def lease_alive(self, seconds: float) -> bool:
        return time.monotonic() - self.last_seen <= max(seconds, self.lease_s)

    def close(self) -> None:
        self.outbox.close()
        super().close()
