"""bridge.daemon.scheduler: per-client queues, per-model lanes, round-robin fairness, stream caps."""
from __future__ import annotations

import threading
import time

import pytest

from bridge.core.errors import Busy
from bridge.daemon.scheduler import BACKGROUND, IMMEDIATE, SERIAL, Scheduler, Streams


def _wait(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.005)
    return False


def test_serial_tasks_of_a_client_run_in_order_and_lanes_run_one_at_a_time():
    s = Scheduler(workers=4, max_queue=100)
    out, running, peak = [], [0], [0]
    lock = threading.Lock()

    def task(tag):
        def run():
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.005)
            with lock:
                running[0] -= 1
                out.append(tag)
        return run
    for i in range(20):
        for client in ("a", "b", "c"):
            assert s.submit(client, task((client, i)), lane="trio")
    assert _wait(lambda: len(out) == 60)
    assert peak[0] == 1                                   # one task of the model lane at a time
    for client in "abc":
        assert [i for c, i in out if c == client] == list(range(20))   # request order per client
    s.stop(1.0)


def test_a_flooded_lane_does_not_delay_other_lanes_or_other_clients():
    s = Scheduler(workers=2, max_queue=1000)
    for i in range(200):                                  # the flood: 200 x 20 ms on one model, 8 clients
        s.submit(("evil", i % 8), lambda: time.sleep(0.02), lane="trio")
    time.sleep(0.05)
    done = {}
    t0 = time.monotonic()
    s.submit(("victim", None), lambda: done.setdefault("ping", time.monotonic() - t0), lane="")
    s.submit(("victim2", None), lambda: done.setdefault("mel", time.monotonic() - t0), lane="mel_2bar")
    # inside the flooded lane a new client waits for about one task per flooding client, not the flood
    s.submit(("victim3", None), lambda: done.setdefault("trio", time.monotonic() - t0), lane="trio")
    assert _wait(lambda: len(done) == 3, 3.0)
    assert done["ping"] < 0.1 and done["mel"] < 0.1, done
    assert done["trio"] < 9 * 0.02 + 0.2, done
    assert s.queued() > 100                               # the flood is still queued behind them
    s.stop(0.1)


def test_every_kind_counts_against_max_queue():
    s = Scheduler(workers=1, max_queue=3)
    gate = threading.Event()
    assert s.submit("a", lambda: gate.wait(5), kind=SERIAL)
    assert s.submit("a", lambda: None, kind=IMMEDIATE)
    assert s.submit("a", lambda: None, kind=BACKGROUND, lane="m")
    assert not s.submit("a", lambda: None, kind=IMMEDIATE)        # full: busy
    assert s.submit("b", lambda: None)                            # another client is not
    assert s.submit("a", lambda: None, force=True)
    gate.set()
    assert _wait(lambda: s.queued() == 0)
    s.stop(1.0)


def test_stop_returns_the_tasks_that_never_ran():
    s = Scheduler(workers=1, max_queue=100)
    gate = threading.Event()
    s.submit("a", lambda: gate.wait(0.3))
    time.sleep(0.05)
    dropped = []
    for i in range(5):
        s.submit("a", lambda: None, drop=lambda i=i: dropped.append(i))
    left = s.stop(2.0)
    assert len(left) == 5
    for t in left:
        t.drop()
    assert dropped == [0, 1, 2, 3, 4]
    assert not s.submit("a", lambda: None)


def test_stream_caps():
    st = Streams(per_client=2, total=3)
    a1, a2 = st.acquire("a", "morph"), st.acquire("a", "knob")
    with pytest.raises(Busy, match="2 per client"):
        st.acquire("a", "morph")
    b1 = st.acquire("b", "morph")
    with pytest.raises(Busy, match="3 in total"):
        st.acquire("c", "morph")
    assert st.snapshot()["active"] == 3 and st.snapshot()["by_kind"] == {"morph": 2, "knob": 1}
    for slot in (a1, a2, b1, b1):                          # release is idempotent
        slot.release()
    st.count_end("expired")
    snap = st.snapshot()
    assert snap["active"] == 0 and snap["refused"] == 2 and snap["expired"] == 1 and snap["clients"] == 0
