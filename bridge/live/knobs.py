"""Latent knobs: a knob value moves the latent along a direction; the latest value wins.

`LatestOnly` runs at most one decode at a time per client and always the latest value (no backlog).
`KnobMap` reads knobs.toml: which MIDI control change moves which direction of which model. The
directions themselves come from bridge.core.directions (one table for the engine, ops and knobs).
"""
from __future__ import annotations

import math
import threading
import tomllib
from dataclasses import dataclass
from typing import Callable

from ..core.errors import LiveError

KNOB_RANGE = 2.0           # a knob at +-1 moves +-2 units along a direction (the measured effect range)


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



def knob_value(v) -> float:
    """A knob value as a float: a finite number in -1..1, else LiveError."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise LiveError(f"knob value must be a number in -1..1, got {v!r}")
    if not -1.0 <= v <= 1.0:
        raise LiveError(f"knob value must be in -1..1, got {v}")
    return float(v)



@dataclass(frozen=True)
class KnobBinding:
    cc: int
    direction: str | int
    channel: int | None = None    # 0-based; None = any channel
    model: str | None = None


class KnobMap:
    """knobs.toml: which control change moves which direction (of which model)."""

    def __init__(self, bindings: list[KnobBinding], model: str | None = None, seed: int = 0):
        self.bindings = bindings
        self.model = model
        self.seed = seed

    @classmethod
    def load(cls, path) -> "KnobMap":
        with open(path, "rb") as f:
            try:
                data = tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                raise LiveError(f"{path}: {e}") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: dict, where: str = "knobs") -> "KnobMap":
        model = data.get("model")
        if model is not None and not isinstance(model, str):
            raise LiveError(f"{where}: 'model' must be a model name")
        seed = data.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise LiveError(f"{where}: 'seed' must be an integer")
        bindings = []
        for i, k in enumerate(data.get("knob", [])):
            if not isinstance(k, dict):
                raise LiveError(f"{where}: [[knob]] {i} must be a table")
            cc = k.get("cc")
            if isinstance(cc, bool) or not isinstance(cc, int) or not 0 <= cc <= 127:
                raise LiveError(f"{where}: knob {i}: 'cc' must be a controller number 0..127, got {cc!r}")
            d = k.get("direction")
            if isinstance(d, bool) or not isinstance(d, (str, int)):
                raise LiveError(f"{where}: knob {i} (cc {cc}): 'direction' must be a name or an index")
            ch = k.get("channel")
            if ch is not None and (isinstance(ch, bool) or not isinstance(ch, int) or not 1 <= ch <= 16):
                raise LiveError(f"{where}: knob {i} (cc {cc}): 'channel' must be 1..16")
            m = k.get("model", model)
            if m is None:
                raise LiveError(f"{where}: knob {i} (cc {cc}) has no model (set 'model' at the top or per knob)")
            bindings.append(KnobBinding(cc, d, None if ch is None else ch - 1, m))
        if not bindings:
            raise LiveError(f"{where}: no [[knob]] entries")
        return cls(bindings, model, seed)

    def lookup(self, msg) -> tuple[KnobBinding, float] | None:
        """A control_change -> (binding, value in -1..1), or None if no knob is mapped to it."""
        if msg.type != "control_change":
            return None
        # a knob bound to the message's channel wins over one bound to any channel
        for b in sorted(self.bindings, key=lambda b: b.channel is None):
            if b.cc == msg.control and (b.channel is None or b.channel == msg.channel):
                return b, cc_to_value(msg.value)
        return None


def cc_to_value(v: int) -> float:
    """0..127 -> -1..1 with 64 = 0 (centre detent); both ends reach the extremes."""
    if v >= 64:
        return min((v - 64) / 63.0, 1.0)
    return max((v - 64) / 64.0, -1.0)

