"""What one surface shows: the model, its knob labels and values, temperature, status, the pattern.

Written by the receive thread (typed messages), the workers (op results) and read by the feedback
thread; every access holds the lock, and `snapshot()` hands out a copy.
"""
from __future__ import annotations

import itertools
import threading

from .config import KNOBS

_PATTERN_IDS = itertools.count(1)


class SurfaceState:
    """The state of one surface (the daemon keeps one per surface session)."""

    def __init__(self, model: str | None, temperature: float = 0.0):
        self._lock = threading.Lock()
        self.model = model
        self.temperature = temperature
        self.knobs: dict[str, list[float]] = {}          # model -> 8 values 0..1 (0.5 = centre)
        self.labels: dict[str, list[str]] = {}           # model -> 8 direction names ("" = none)
        self.endpoints: dict[str, list[float]] = {}      # "a" / "b" -> latent (by model: see set_endpoint)
        self.endpoint_model: dict[str, str] = {}
        self.status = "ready"
        self.xy = (0.5, 0.5)
        self.pattern: dict | None = None                 # {id, model, bar, bars, notes: rows}

    def set(self, **values) -> None:
        """Set plain attributes (model, temperature, status, xy)."""
        with self._lock:
            for k, v in values.items():
                setattr(self, k, v)

    def get(self, name: str):
        with self._lock:
            return getattr(self, name)

    def knob(self, model: str, index: int, value: float) -> None:
        """Knob `index` (1..8) of `model` now shows `value` (0..1)."""
        with self._lock:
            self.knobs.setdefault(model, [0.5] * KNOBS)[index - 1] = value

    def knob_values(self, model: str) -> list[float]:
        with self._lock:
            return list(self.knobs.get(model, [0.5] * KNOBS))

    def set_labels(self, model: str, names: list[str]) -> None:
        with self._lock:
            self.labels[model] = (list(names) + [""] * KNOBS)[:KNOBS]

    def set_endpoint(self, slot: str, model: str, z: list[float]) -> None:
        with self._lock:
            self.endpoints[slot], self.endpoint_model[slot] = list(z), model

    def endpoint(self, slot: str, model: str) -> list[float] | None:
        """The latent learned for `slot` if it was learned for `model`."""
        with self._lock:
            return self.endpoints.get(slot) if self.endpoint_model.get(slot) == model else None

    def set_pattern(self, model: str, rows: list, bar: int | None, bars: int) -> int:
        """A new pattern is playing (from `bar`); returns its id."""
        pid = next(_PATTERN_IDS)
        with self._lock:
            self.pattern = {"id": pid, "model": model, "bar": bar, "bars": bars, "notes": [list(r) for r in rows]}
        return pid

    def snapshot(self) -> dict:
        """A copy of everything a surface shows (the feedback thread diffs these)."""
        with self._lock:
            model = self.model
            return {"model": model, "temperature": self.temperature, "status": self.status, "xy": list(self.xy),
                    "knobs": list(self.knobs.get(model, [0.5] * KNOBS)),
                    "labels": list(self.labels.get(model, [""] * KNOBS)),
                    "learned": sorted(s for s in self.endpoints if self.endpoint_model.get(s) == model),
                    "pattern": self.pattern}
