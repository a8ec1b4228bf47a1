"""Tempo-synced morphs: an interpolation decoded once, streamed step by step on the bar grid.

`MorphJob` decodes all steps in one batch on its own thread and sends each step's sequence at least
`lookahead_bars` (default 1 bar at the current tempo) before the bar where it starts. Modes: once,
loop, pingpong (`step_order`, `step_at`).
"""
from __future__ import annotations

import itertools
import math
import threading
import time
from typing import Callable

from ..core.errors import LiveError
from ..core.notes import BEATS_PER_BAR
from .clock import POLL_S, Clock

DEFAULT_LOOKAHEAD_BARS = 1.0
MODES = ("once", "loop", "pingpong")
MAX_BAR = 10_000_000       # a start bar beyond this is no song position (and would overflow clock maths)


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
    slow decode never blocks the daemon, and it may stop early once `cancelled` is set.
    on_step(slot, step, bar, notes, z) sends one step; it is called only while the job is not
    cancelled. on_done(reason) is called once at the end ("done" | "cancelled" | "expired" |
    "error: ..."; after an error, `job.error` holds the exception): an exception anywhere in the
    job's thread, in the decode or while streaming, ends the job with "error: ...".
    lease() -> bool, when given, is asked while the job waits: once it says False (the client has
    not renewed the stream's lease) the job ends with "expired" and its thread exits.
    """

    def __init__(self, clock: Clock, mode: str, bars_per_step: int, decode_fn, on_step, on_done=None,
                 start_bar: int | None = None, lookahead_bars: float = DEFAULT_LOOKAHEAD_BARS,
                 morph_id: int | None = None, lease: Callable[[], bool] | None = None):
        if mode not in MODES:
            raise LiveError(f"morph mode must be one of {', '.join(MODES)}, got {mode!r}")
        if isinstance(bars_per_step, bool) or not isinstance(bars_per_step, int) or not 1 <= bars_per_step <= 64:
            raise LiveError(f"morph bars_per_step must be an integer 1..64, got {bars_per_step!r}")
        if lookahead_bars < 1.0:
            raise LiveError("morph lookahead must be at least one bar")
        if start_bar is not None and (isinstance(start_bar, bool) or not isinstance(start_bar, int)
                                      or start_bar > MAX_BAR):
            raise LiveError(f"morph start_bar must be an integer bar index up to {MAX_BAR}, got {start_bar!r}"[:200])
        if start_bar is not None and clock.known and clock.playing and start_bar < clock.next_bar():
            raise LiveError(f"morph start_bar {start_bar} has already started (the song is in bar {clock.bar()})")
        self.id = next(_morph_ids) if morph_id is None else morph_id
        self.clock, self.mode, self.bars_per_step = clock, mode, bars_per_step
        self.lookahead_bars = float(lookahead_bars)
        self.start_bar = start_bar
        self._decode_fn, self._on_step, self._on_done = decode_fn, on_step, on_done
        self._lease = lease
        self.cancelled = threading.Event()
        self.finished = threading.Event()
        self.zs = None
        self.seqs = None
        self.sent: list[dict] = []   # {slot, step, bar, lead_s}: what went out and how early
        self.decode_s = None
        self.error: BaseException | None = None   # what the decode raised ("error: ..." reason)
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

    def _expired(self) -> bool:
        return self._lease is not None and not self._lease()

    def _wait_for_beat(self, beat: float) -> str | None:
        """Wait until the clock reaches `beat`: None, or why the job must end instead."""
        while True:
            if self.cancelled.is_set():
                return "cancelled"
            if self._expired():
                return "expired"
            remaining = self.clock.seconds_until_beat(beat)
            if remaining <= 0:
                return None
            with self.clock.changed:
                self.clock.changed.wait(min(remaining, POLL_S))

    def _run(self) -> None:
        try:
            reason = self._stream()
        except Exception as e:  # noqa: BLE001 - reported to the client, never kills the daemon
            self.error = e
            reason = "cancelled" if self.cancelled.is_set() else f"error: {e}"
        self._finish(reason)

    def _stream(self) -> str:
        t0 = time.monotonic()
        self.zs, self.seqs = self._decode_fn(self.cancelled)
        self.decode_s = time.monotonic() - t0
        if self.cancelled.is_set():
            return "cancelled"
        n = len(self.seqs)
        look = self.lookahead_bars * BEATS_PER_BAR
        start = self.start_bar
        slot = 0
        while not self.cancelled.is_set():
            if self._expired():
                return "expired"
            if not (self.clock.known and self.clock.playing):
                with self.clock.changed:
                    self.clock.changed.wait(POLL_S * 4)
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
                return "done"
            bar = start + slot * self.bars_per_step
            why = self._wait_for_beat(bar * BEATS_PER_BAR - look)
            if why is not None:
                return why
            if self.clock.bar() > bar + self.bars_per_step - 1:
                continue  # the song jumped past this slot while waiting
            lead = self.clock.seconds_until_beat(bar * BEATS_PER_BAR)
            if self.cancelled.is_set():
                break
            self._on_step(slot, step, bar, self.seqs[step], None if self.zs is None else self.zs[step])
            self.sent.append({"slot": slot, "step": step, "bar": bar, "lead_s": lead})
            slot += 1
        return "cancelled"

