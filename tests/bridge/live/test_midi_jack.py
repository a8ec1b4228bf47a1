"""The whole MIDI path through a real JACK server (jackd -d dummy, started and stopped here under a
unique server name) with python-rtmidi's JACK API: MIDI clock + control changes in, the pattern out
of the daemon's virtual port, every note timed against the clock tick it belongs to.

Three processes besides jackd, so the daemon under test (in this process) can starve none of them:
the clock source (jack_clock.py: ticks and control changes, like a hardware clock), the monitor
(jack_monitor.py, JACK-Client: ticks and notes on one timeline, the time of the JACK cycle that
delivered them) and this one. Not an rtmidi input as the monitor: python-rtmidi's JACK input
mishandles two events in one JACK period (it hands over the first twice and drops the second; seen
with a note-off + note-on pair and with two control changes); the same bug is why the clock source
never puts two events into one period.

This file runs in its own pytest process (`make test`): python-rtmidi's JACK backend lives in native
code, so a crash there ends that process, not the whole test run. Nothing here is ever rerun: a crash
is reported as a crash (faulthandler's stacks, and the Makefile prints the jackd log kept in
$LATENT_BRIDGE_JACK_LOG), a hang as a hang (pytest-timeout's thread method dumps every stack).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import mido
import numpy as np
import pytest

from bridge.live import ops as live
from bridge.runtime.engine import load_model

from live_helpers import packages_with_directions, percentile

TEMPO = 120.0
PPQN = 24
RATE = 48000                          # jackd -r
PERIOD = 128                          # jackd -p: 2.7 ms periods
MIN_GAP_S = 0.004                     # between two sends of the clock source: never one JACK period
# Every note of two loops must come out within MATCH_BOUND_S of its own tick (half a 16th: a note a
# 16th late, 125 ms, is a missing note plus one too many), every one within NOTE_BOUND_S (a note one
# tick late is 20.8 ms off), and the median within MEDIAN_BOUND_S. docs/live-performance.md quotes
# this test. The one allowance: a note sent later than NOTE_BOUND_S while jackd reported an xrun
# (from XRUN_BEFORE_S before its tick until XRUN_AFTER_S after it was sent: the JACK graph ran late,
# delaying the ticks the daemon follows) is JACK's, up to XRUN_OUTLIERS such notes (still within
# MATCH_BOUND_S, and the median bound holds for all).
MATCH_BOUND_S = 60.0 / TEMPO / 8
NOTE_BOUND_S = 0.015
MEDIAN_BOUND_S = 0.005
XRUN_OUTLIERS = 8
XRUN_BEFORE_S = 0.25
XRUN_AFTER_S = 0.05
STIMULUS_JITTER_S = 0.020             # the test's own clock: a tick this far off its line (else: not measurable)
OVERLOADED = 1.5                      # load average per CPU above which a late clock is the machine's fault


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when this test process dies, even by SIGKILL or a timeout
    (Linux prctl PR_SET_PDEATHSIG), so no jackd or monitor outlives a killed test run."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


def jack_log_path() -> Path:
    """Where jackd's output goes: $LATENT_BRIDGE_JACK_LOG (the Makefile prints it on failure)."""
    env = os.environ.get("LATENT_BRIDGE_JACK_LOG")
    return Path(env) if env else Path(tempfile.gettempdir()) / f"latent-bridge-jack-{os.getpid()}.log"


def jack_xruns() -> list[tuple[float, float]]:
    """(monotonic time, ms) of every xrun jackd reported: its log lines carry the time they were read."""
    out = []
    for line in jack_log_tail(10 ** 6).splitlines():
        if "XRun" in line and line.startswith("[") and line.rstrip().endswith("usec"):
            out.append((float(line[1:line.index("]")]), float(line.split()[-2]) / 1e3))
    return out


def jack_log_tail(lines: int = 40) -> str:
    try:
        return "\n".join(jack_log_path().read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no jackd log)"


# A CPU-bound loop at SCHED_IDLE: it runs only when nothing else wants the CPU.
SPIN = "import os\nos.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\nwhile True:\n    pass\n"


def keep_cpus_awake() -> list[subprocess.Popen]:
    """One SCHED_IDLE spinner per CPU while the JACK server runs. On an idle VM the virtual CPUs halt
    and the hypervisor wakes them late for the dummy driver's timer: jackd then reported hundreds of
    xruns of up to 45 ms per run (ticks and notes delivered that late), against tens of at most ~15 ms
    with the CPUs kept busy; any real work preempts a SCHED_IDLE thread at once."""
    return [subprocess.Popen([sys.executable, "-c", SPIN], preexec_fn=_die_with_parent)
            for _ in range(os.cpu_count() or 1)]


@pytest.fixture(scope="module")
def jack():
    """A private JACK server (dummy driver, 128-frame periods = 2.7 ms at 48 kHz, synchronous)."""
    assert shutil.which("jackd"), "jackd (Debian jackd2) is required"
    name = f"lbtest-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_START_SERVER"] = "1"
    log = open(jack_log_path(), "a", buffering=1)      # both JACK test modules: one log, in order
    spinners = keep_cpus_awake()
    # -S, synchronous mode: a client late for a cycle (this VM may be busy) delays the cycle instead
    # of losing that cycle's MIDI (async mode drops it: seen as lost clock ticks and notes). 128-frame
    # periods (2.7 ms): with 64 (1.3 ms) the dummy driver itself ran late on a 2-core VM (xruns by the
    # hundred, the clock thread's ticks 13-30 ms apart instead of 20.8), with 128 it keeps time.
    proc = subprocess.Popen(["jackd", "-S", "-n", name, "-d", "dummy", "-r", str(RATE), "-p", str(PERIOD)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=_die_with_parent)

    def stamp():
        # each line with the monotonic time it was read: an xrun is placed against the test's timeline
        for line in proc.stdout:
            log.write(f"[{time.monotonic():.3f}] {line}")
    stamper = threading.Thread(target=stamp, daemon=True)
    stamper.start()
    backend = mido.Backend("mido.backends.rtmidi/UNIX_JACK", load=True)
    deadline = time.monotonic() + 15
    while True:
        try:
            probe = backend.open_output("probe", virtual=True, client_name="lbtest-probe")
            probe.close()
            break
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                for spinner in spinners:
                    spinner.kill()
                raise RuntimeError("jackd did not start:\n" + jack_log_tail())
            time.sleep(0.2)
    yield backend
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    stamper.join(5)
    log.close()
    for spinner in spinners:
        spinner.kill()
        spinner.wait()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


class ClockSource:
    """MIDI clock at `tempo` from its own JACK port "CLIENT:ctl", in a process of its own (jack_clock.py):
    the stimulus keeps time whatever the daemon in this process does with the GIL. `start()` waits
    for the port, `go()` starts the ticks, `inject(msg)` sends a control change half a tick after the
    next tick, `stop()` sends stop and reads back when each tick was sent (`sent`, monotonic seconds)."""

    def __init__(self, client: str, tempo: float):
        self.client, self.tempo, self.sent = client, tempo, []
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("jack_clock.py")), client,
                                      str(tempo), str(MIN_GAP_S)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, preexec_fn=_die_with_parent)

    def _say(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def start(self):
        ready = self.proc.stdout.readline().strip()
        assert ready == "ready", f"the clock source did not start: {ready!r}\n" + jack_log_tail()
        return self

    def go(self) -> None:
        self._say("go")

    def inject(self, msg) -> None:
        assert msg.type == "control_change", msg
        self._say(f"cc {msg.control} {msg.value}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self._say("stop")
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        line = next((w for w in out.splitlines() if w.startswith("sent")), "sent")
        self.sent = [float(t) for t in line.split()[1:]]


class JackMonitor:
    """An independent listener in its own process (jack_monitor.py, JACK-Client): (seconds, bytes) of
    every event it receives from the ports connected to it, seconds on time.monotonic() at the JACK
    cycle that delivered it (jack_monitor.py says why not JACK's frames)."""

    def __init__(self, client: str):
        self.client = client
        self.events: list[tuple[float, tuple[int, ...]]] = []
        self.raw: list[str] = []
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("jack_monitor.py")), client],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, preexec_fn=_die_with_parent)
        ready = self.proc.stdout.readline().strip()
        assert ready == "ready", f"the JACK monitor did not start: {ready!r}\n" + jack_log_tail()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.raw.append(line.rstrip("\n"))
            seconds, _frame, *data = line.split()
            self.events.append((float(seconds), tuple(int(x, 16) for x in data)))

    def connect(self, port: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            r = subprocess.run(["jack_connect", port, f"{self.client}:input"], capture_output=True, text=True)
            if r.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"jack_connect {port} -> {self.client}:input failed: {r.stderr}{r.stdout}")
            time.sleep(0.1)

    def close(self) -> None:
        time.sleep(0.3)            # let the last events through
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.close()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self._thread.join(2)

    def tick_times(self) -> list[float]:
        """Time of clock tick k (the k-th 0xF8 after the first 0xFA start: the follower's tick k)."""
        start = next(i for i, (_, d) in enumerate(self.events) if d[0] == 0xFA)
        return [t for t, d in self.events[start:] if d[0] == 0xF8]

    def note_ons(self) -> list[tuple[float, int]]:
        """(time, pitch) of every note-on (velocity > 0)."""
        return [(t, d[1]) for t, d in self.events if len(d) == 3 and d[0] & 0xF0 == 0x90 and d[2] > 0]


def expected_note_ons(pattern, loops: int) -> list[tuple[int, int]]:
    """(tick, pitch) of every note-on of `loops` loops of a pattern, in time order."""
    out = []
    for k in range(loops):
        for n in pattern.notes:
            if n.start < pattern.length:
                beat = pattern.start_beat + k * pattern.length + n.start
                tick = beat * PPQN
                assert abs(tick - round(tick)) < 1e-6, f"note off the tick grid: beat {beat}"
                out.append((int(round(tick)), n.pitch))
    return sorted(out)


def match_notes(expected: list[tuple[int, int]], received: list[tuple[float, int]], tick_times: dict,
                bound: float) -> tuple[list[tuple[int, float]], list[str]]:
    """Time errors ((tick, arrival - time of the note's own clock tick in seconds) of each note that
    arrived) and problems: every expected
    note-on must arrive, with its pitch, within `bound` of its tick, and nothing else may come out in
    the window from the first expected tick to the last. `tick_times`: tick index -> time."""
    problems = []
    first, last = tick_times[expected[0][0]], tick_times[expected[-1][0]]
    window = sorted((t, p) for t, p in received if first - bound <= t <= last + bound)
    used = [False] * len(window)
    errors = []
    for tick, pitch in expected:
        at = tick_times[tick]
        best = None
        for i, (t, p) in enumerate(window):
            if not used[i] and p == pitch and (best is None or abs(t - at) < abs(window[best][0] - at)):
                best = i
        if best is None or abs(window[best][0] - at) > bound:
            near = [(round((t - at) * 1e3, 1), p) for t, p in window if abs(t - at) < 0.2]
            problems.append(f"tick {tick} (beat {tick / PPQN:g}) pitch {pitch}: no note-on within "
                            f"{bound * 1e3:.0f} ms; note-ons within 200 ms (ms, pitch): {near}")
            continue
        used[best] = True
        errors.append((tick, window[best][0] - at))
    extra = [(round(t - first, 4), p) for (t, p), u in zip(window, used) if not u]
    if extra:
        problems.append(f"{len(extra)} note-ons that belong to no note of the pattern (s after the first "
                        f"tick, pitch): {extra[:10]}")
    return errors, problems


@pytest.mark.timeout(120, method="thread")
def test_cc_knobs_and_clocked_midi_out_through_jack(jack, tiny_models_dir, tmp_path):
    from bridge.daemon.server import BridgeServer
    models_dir = packages_with_directions(tiny_models_dir, tmp_path / "models", names=("mel_2bar",))
    model = load_model(models_dir / "mel_2bar")
    knobs = tmp_path / "knobs.toml"
    knobs.write_text('model = "mel_2bar"\nseed = 5\n[[knob]]\ncc = 21\ndirection = "note_density"\n'
                     '[[knob]]\ncc = 22\ndirection = "pc1"\n')
    monitor = JackMonitor(f"lbtest-monitor-{uuid.uuid4().hex[:6]}")
    clock = ClockSource("lbtest-ctl", TEMPO).start()
    server = BridgeServer({"mel_2bar": model}, port=0, workers=2)
    server.start()
    try:
        # the serve command's live options: bridge.live.ops.add_arguments / configure
        parser = argparse.ArgumentParser()
        live.add_arguments(parser)
        live.configure(server, parser.parse_args(["--midi-in", "lbtest-ctl", "--midi-out", "lb-out",
                                                  "--knobs", str(knobs), "--midi-api", "jack"]))
        midi = live.HUB.midi
        midi.player.record = True                  # what the player sent, for the failure message
        monitor.connect(next(n for n in jack.get_input_names() if "lbtest-ctl" in n))
        monitor.connect(next(n for n in jack.get_input_names() if "lb-out" in n))
        clock.go()
        assert _wait(lambda: midi.follower.known and midi.follower.beat() > 1.0, 10)
        assert midi.clock() is midi.follower                       # MIDI clock present: it leads
        assert midi.follower.tempo == pytest.approx(TEMPO, rel=0.06)   # JACK dummy on a VM jitters
        clock.inject(mido.Message("control_change", control=21, value=127))      # note_density -> +1
        clock.inject(mido.Message("control_change", control=22, value=0))        # pc1 -> -1
        assert _wait(lambda: midi.cc_seen == 2 and midi.player._patterns, 10), midi.cc_seen
        # cc_seen counts a CC before its knob is applied: wait for both values, then for the worker
        want = {"note_density": 1.0, "pc1": -1.0}
        state = live.HUB.hardware.state
        assert _wait(lambda: live.STATE_KEY in state and state[live.STATE_KEY].knobs.get("mel_2bar") == want
                     and state[live.STATE_KEY].knob_worker.idle.is_set(), 10), state[live.STATE_KEY].knobs
        assert state[live.STATE_KEY].knobs["mel_2bar"] == want
        pattern = midi.player._patterns[-1]
        # the pattern the knobs asked for: the knobs.toml seed's latent moved along both directions
        dirs = {d["name"]: np.asarray(d["vector"]) for d in model.info["directions"]}
        z = model.sample_z(1, 5)[0] + live.KNOB_RANGE * (dirs["note_density"] - dirs["pc1"])
        expected = model.decode(z.astype(np.float32))[0]
        assert [(n.pitch, n.start, n.end) for n in pattern.notes] == [(n.pitch, n.start, n.end) for n in expected]
        assert len(pattern.notes) >= 4, pattern.notes            # enough notes for the timing to mean something
        assert pattern.start_beat % 4 == 0
        end_beat = pattern.start_beat + 2 * pattern.length     # two loops of the 2-bar pattern
        assert _wait(lambda: midi.follower.beat() > end_beat + 0.5, 20)
    finally:
        # Stop the MIDI traffic and let it drain before the ports close.
        clock.stop()                # the follower stops; the player goes quiet (all notes off)
        seen_by_daemon = live.HUB.midi.follower.ticks_seen if live.HUB.midi is not None else None
        live.close_midi()
        live.HUB.hardware = None
        server.shutdown()
        monitor.close()
    ons = monitor.note_ons()
    assert ons, "nothing came out of the virtual port\n" + "\n".join(monitor.raw[-20:]) + "\n" + jack_log_tail()
    want = expected_note_ons(pattern, 2)
    ticks = np.asarray(clock.sent)
    assert want[-1][0] < len(ticks), (want[-1], len(ticks))
    # Two timelines, both time.monotonic() on this machine: when the clock source sent each tick (its
    # own log) and when the player sent each note (its log: the daemon's timing), plus when JACK
    # delivered each note to the monitor (the whole path). JACK's dummy driver on a VM runs cycles
    # late (xruns of up to ~15 ms, most often on an idle machine whose timer wake-ups are late), which
    # delays delivery of ticks and notes alike: the daemon is judged on when it sent each note, the
    # path on every note arriving, with its pitch and nothing else, within MATCH_BOUND_S.
    # Each note's reference is its own tick k read off the line through the sent ticks k - 24 .. k + 24
    # (the daemon's clock follower also fits a line). The stimulus first: if the clock source could
    # not keep time (a tick sent more than STIMULUS_JITTER_S off its line), no note timing can be
    # judged against its tick. On an overloaded machine (seen: load 9 on 2 cores) the test says so and
    # is skipped; on one that is not overloaded that is a failure.
    ref, worst = {}, 0.0
    for tick in sorted({k for k, _ in want}):
        ks = np.arange(max(tick - PPQN, 0), min(tick + PPQN, len(ticks) - 1) + 1)
        line = np.polyfit(ks, ticks[ks], 1)
        ref[tick] = float(np.polyval(line, tick))
        worst = max(worst, float(np.abs(ticks[ks] - np.polyval(line, ks)).max()))
    if worst > STIMULUS_JITTER_S:
        gaps = np.diff(ticks[max(want[0][0] - PPQN, 0):want[-1][0] + PPQN]) * 1e3
        load, cpus = os.getloadavg()[0], os.cpu_count() or 1
        why = (f"the clock source could not keep time (a tick sent {worst * 1e3:.1f} ms off its line, ticks "
               f"{gaps.min():.1f}-{gaps.max():.1f} ms apart instead of {60e3 / TEMPO / PPQN:.1f}; load average "
               f"{load:.1f} on {cpus} CPUs)")
        if load > OVERLOADED * cpus:
            pytest.skip(f"{why}: the machine is overloaded, MIDI timing not measured")
        pytest.fail(f"{why} on a machine that is not overloaded\n" + jack_log_tail())
    window = (ref[want[0][0]] - 1.0, ref[want[-1][0]] + 1.0)
    all_xruns = jack_xruns()
    xruns = [ms for t, ms in all_xruns if window[0] <= t <= window[1]]
    sent_ons = [(t, p) for t, _, kind, p in midi.player.log if kind == "on"]
    timed, problems = match_notes(want, sent_ons, ref, MATCH_BOUND_S)
    delivered, path_problems = match_notes(want, ons, ref, MATCH_BOUND_S)
    errors, delivered = [e for _, e in timed], [e for _, e in delivered]
    problems += [f"out of the port: {p}" for p in path_problems]
    xrun_times = [t for t, _ in all_xruns]
    late, excused = [], []
    for tick, err in timed:
        if abs(err) > NOTE_BOUND_S:
            at = ref[tick]
            jack_late = any(at - XRUN_BEFORE_S <= t <= at + err + XRUN_AFTER_S for t in xrun_times)
            (excused if jack_late else late).append(round(err * 1e3, 1))
    if late or len(excused) > XRUN_OUTLIERS:
        problems.append(f"notes sent more than {NOTE_BOUND_S * 1e3:.0f} ms from their tick (ms): {late} with no "
                        f"xrun near them, {excused} while jackd reported one (allowed: {XRUN_OUTLIERS})")
    elif excused:
        print(f"\n{len(excused)} notes sent late (ms) {excused} while jackd reported xruns")
    abs_ms = np.abs(errors) * 1e3 if errors else np.array([np.inf])
    path_ms = np.abs(delivered) * 1e3 if delivered else np.array([np.inf])
    summary = (f"MIDI out through JACK at {TEMPO:g} bpm: {len(errors)} of {len(want)} notes sent, time after their "
               f"own clock tick: mean {np.mean(errors) * 1e3 if errors else float('nan'):+.2f} ms, "
               f"p50 {percentile(abs_ms, 50):.2f} ms, p99 {percentile(abs_ms, 99):.2f} ms, max {abs_ms.max():.2f} ms; "
               f"{len(delivered)} delivered by JACK, p50 {percentile(path_ms, 50):.2f} ms, p99 "
               f"{percentile(path_ms, 99):.2f} ms, max {path_ms.max():.2f} ms; jackd xruns in the two loops: "
               f"{len(xruns)}" + (f" (max {max(xruns):.1f} ms)" if xruns else ""))
    print("\n" + summary)
    if problems:
        t0 = ref[want[0][0]]
        gaps = np.diff(ticks) * 1e3
        dump = jack_log_path().with_suffix(".monitor.log")
        dump.write_text("\n".join(monitor.raw) + "\n")
        sent = [(round(t - t0, 4), round(b, 3), kind, p) for t, b, kind, p in midi.player.log
                if want[0][0] / PPQN - 1 <= b <= want[-1][0] / PPQN + 1]
        pytest.fail(summary + "\n" + "\n".join(problems) + f"\nsent by the player (s after the first expected "
                    f"note's tick, beat, kind, pitch): {sent}\nclock ticks: sent {len(ticks)}, seen by the monitor "
                    f"{len(monitor.tick_times())}, by the daemon {seen_by_daemon}; gaps between sent ticks (ms) min "
                    f"{gaps.min():.2f} max {gaps.max():.2f}; everything the monitor saw: {dump}")
    assert percentile(abs_ms, 50) < MEDIAN_BOUND_S * 1e3, summary


def _wait(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return bool(pred())
