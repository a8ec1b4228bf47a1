"""The daemon's work scheduler: per-client queues, per-model lanes, a fixed pool of workers.

Who waits for whom (docs/osc-protocol.md, "Order and fairness"):

- A **client** is a host plus a session (bridge.daemon.server decides the key: a session that
  completed the hello handshake is its own client; every source port of a host that did not is
  one client together), never a bare source port. Everything a client has queued or running
  counts against its `max_queue`: serial requests, immediate ones (`serial=False`, e.g. morph,
  knob, transport) and background work (a morph's decode); past it, `submit` refuses (busy).
- **Serial** tasks of a client run one after another in request order (its replies stay in order).
  **Immediate** tasks run as soon as a worker is free. **Background** tasks (a live stream's
  decode) run in their lane, not behind the client's serial requests.
- Each task has a **lane**: the model it runs (at most one task per model lane runs at a time, so
  no worker ever sits blocked on a model's lock) or "" for work that needs no model (ping, hello,
  stats, errors: as many at once as there are workers). Workers take lanes round-robin and, inside
  a lane, clients round-robin: a request for a model waits for at most one task of each other
  client queued for that model, however many each has queued, and a flood of one model does not
  hold back requests for other models or for none.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from typing import Callable, Hashable

from ..core.errors import Busy
from .session import StreamSlot

log = logging.getLogger("bridge.scheduler")

SERIAL, IMMEDIATE, BACKGROUND = "serial", "immediate", "background"


class Task:
    """One unit of work. `run()` does it; `drop()` answers it when it will never run (shutdown)."""
    __slots__ = ("client", "lane", "kind", "run", "drop", "queued_at")

    def __init__(self, client: Hashable, lane: str, kind: str, run: Callable[[], None],
                 drop: Callable[[], None] | None = None):
        self.client, self.lane, self.kind, self.run, self.drop = client, lane, kind, run, drop
        self.queued_at = time.monotonic()


class _Client:
    __slots__ = ("pending", "serial_busy", "count")

    def __init__(self):
        self.pending: deque[Task] = deque()   # serial tasks behind the one in a lane or running
        self.serial_busy = False              # a serial task of this client is in a lane or running
        self.count = 0                        # every task of this client queued or running


class _Lane:
    __slots__ = ("name", "limit", "running", "queue")

    def __init__(self, name: str, limit: int | None):
        self.name, self.limit, self.running = name, limit, 0
        self.queue: OrderedDict[Hashable, deque[Task]] = OrderedDict()   # client -> its ready tasks

    def push(self, task: Task) -> None:
        q = self.queue.get(task.client)
        if q is None:
            self.queue[task.client] = q = deque()
        q.append(task)

    def ready(self) -> bool:
        return bool(self.queue) and (self.limit is None or self.running < self.limit)

    def pop(self) -> Task:
        client, q = next(iter(self.queue.items()))
        task = q.popleft()
        del self.queue[client]
        if q:
            self.queue[client] = q   # to the back: the next client of this lane goes first
        self.running += 1
        return task


class Scheduler:
    """Runs tasks on `workers` threads with the rules of the module docstring. Thread-safe."""

    def __init__(self, workers: int, max_queue: int, name: str = "bridge-worker"):
        self.workers = workers
        self.max_queue = max_queue
        self._cond = threading.Condition()
        self._clients: dict[Hashable, _Client] = {}
        self._lanes: dict[str, _Lane] = {"": _Lane("", None)}
        self._order: list[str] = [""]
        self._rr = 0
        self._immediate: deque[Task] = deque()
        self._running = 0
        self._stopping = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    # ---- submitting ----
    def submit(self, client: Hashable, run: Callable[[], None], *, lane: str = "", kind: str = SERIAL,
               drop: Callable[[], None] | None = None, force: bool = False) -> bool:
        """Queue `run()` for `client` in `lane`.

        Args:
            client: the client key (its queue and its `max_queue`).
            run: the work; it must answer for itself (exceptions are logged and swallowed).
            lane: a model name, or "" for work that needs no model.
            kind: SERIAL, IMMEDIATE or BACKGROUND (see the module docstring).
            drop: called instead of `run` if the task never runs (the scheduler stops).
            force: queue even over `max_queue` (an error answer that must keep its place in order).

        Returns:
            False when the client already has `max_queue` tasks (or the scheduler is stopping): the
            caller answers `busy`.
        """
        task = Task(client, lane, kind, run, drop)
        with self._cond:
            if self._stopping:
                return False
            c = self._clients.get(client)
            if c is None:
                c = self._clients[client] = _Client()
            if c.count >= self.max_queue and not force:
                return False
            c.count += 1
            if kind == SERIAL:
                c.pending.append(task)
                if not c.serial_busy:
                    self._promote(c)
            elif kind == IMMEDIATE:
                self._immediate.append(task)
            else:
                self._lane(lane).push(task)
            self._cond.notify()
        return True

    def _lane(self, name: str) -> _Lane:
        lane = self._lanes.get(name)
        if lane is None:
            lane = self._lanes[name] = _Lane(name, 1)
            self._order.append(name)
        return lane

    def _promote(self, c: _Client) -> None:
        if c.pending:
            task = c.pending.popleft()
            self._lane(task.lane).push(task)
            c.serial_busy = True

    # ---- state ----
    def queued(self, client: Hashable | None = None) -> int:
        """Tasks queued or running: of one client, or of all."""
        with self._cond:
            if client is not None:
                c = self._clients.get(client)
                return 0 if c is None else c.count
            return sum(c.count for c in self._clients.values())

    def snapshot(self) -> dict:
        """{"queued", "running", "clients", "lanes": {lane: queued}} for stats."""
        with self._cond:
            lanes = {(n or "-"): sum(len(q) for q in lane.queue.values()) + lane.running
                     for n, lane in self._lanes.items()}
            return {"queued": sum(c.count for c in self._clients.values()), "running": self._running,
                    "clients": len(self._clients), "lanes": lanes}

    # ---- workers ----
    def _pick(self) -> Task | None:
        if self._immediate:
            return self._immediate.popleft()
        n = len(self._order)
        for i in range(n):
            lane = self._lanes[self._order[(self._rr + i) % n]]
            if lane.ready():
                self._rr = (self._rr + i + 1) % n
                return lane.pop()
        return None

    def _finish(self, task: Task) -> None:
        if task.kind != IMMEDIATE:
            self._lanes[task.lane].running -= 1
        c = self._clients.get(task.client)
        if c is not None:
            c.count -= 1
            if task.kind == SERIAL:
                c.serial_busy = False
                self._promote(c)
            if c.count <= 0 and not c.pending and not c.serial_busy:
                del self._clients[task.client]
        self._running -= 1
        self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                task = None
                while not self._stopping:
                    task = self._pick()
                    if task is not None:
                        break
                    self._cond.wait()
                if task is None:
                    return
                self._running += 1
            try:
                task.run()
            except Exception:   # a task answers for itself; this only keeps the worker alive
                log.exception("task failed")
            finally:
                with self._cond:
                    self._finish(task)

    # ---- stopping ----
    def stop(self, timeout: float) -> list[Task]:
        """Stop taking tasks, wait up to `timeout` for the running ones, return those never started
        (the caller answers them: `Task.drop`)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            deadline = time.monotonic() + timeout
            while self._running and time.monotonic() < deadline:
                self._cond.wait(0.05)
            left: list[Task] = list(self._immediate)
            self._immediate.clear()
            for lane in self._lanes.values():
                for q in lane.queue.values():
                    left.extend(q)
                lane.queue.clear()
            for c in self._clients.values():
                left.extend(c.pending)
                c.pending.clear()
            left.sort(key=lambda t: t.queued_at)
            return left


class Streams:
    """Live streams (morphs, knob decodes) under two caps: per client and in total; `stats` reports
    them. `acquire` returns a StreamSlot-like object whose `release()` frees the place."""

    def __init__(self, per_client: int, total: int):
        self.per_client, self.total = per_client, total
        self._lock = threading.Lock()
        self._active: dict[Hashable, dict[str, int]] = {}
        self._count = 0
        self.refused = 0
        self.expired = 0
        self.failed = 0

    def acquire(self, client: Hashable, kind: str):
        """A slot for a stream of `kind` of `client`.

        Raises:
            Busy: the client has `per_client` streams, or all clients `total`.
        """
        with self._lock:
            mine = self._active.get(client, {})
            if sum(mine.values()) >= self.per_client or self._count >= self.total:
                self.refused += 1
                which = (f"{self.per_client} per client" if sum(mine.values()) >= self.per_client
                         else f"{self.total} in total")
                raise Busy(f"too many live streams ({which}); stop one first")
            mine[kind] = mine.get(kind, 0) + 1
            self._active[client] = mine
            self._count += 1

        def release():
            with self._lock:
                m = self._active.get(client)
                if m is not None and m.get(kind, 0) > 0:
                    m[kind] -= 1
                    self._count -= 1
                    if not any(m.values()):
                        del self._active[client]
        return StreamSlot(release)

    def count_end(self, reason: str) -> None:
        """A stream ended because its lease `expired`, or `failed` with an error."""
        with self._lock:
            if reason == "expired":
                self.expired += 1
            elif reason == "failed":
                self.failed += 1

    def snapshot(self) -> dict:
        with self._lock:
            kinds: dict[str, int] = {}
            for m in self._active.values():
                for k, n in m.items():
                    kinds[k] = kinds.get(k, 0) + n
            return {"active": self._count, "by_kind": kinds, "clients": len(self._active),
                    "max_per_client": self.per_client, "max_total": self.total,
                    "refused": self.refused, "expired": self.expired, "failed": self.failed}
