"""A MIDI clock source on its own JACK port, in its own process (test_midi_jack.py's stimulus).

    python jack_clock.py CLIENT_NAME TEMPO MIN_GAP_S

Like a hardware clock, it keeps time whatever the daemon under test does: in the test's process
its thread shared the GIL with the daemon's decoding and could be held back by it. Prints `ready`
once the port is open; then reads commands on stdin, one per line:
  `go`               send start and tick at TEMPO (24 ppqn)
  `cc CONTROL VALUE` send a control change half a tick after the next tick
  `stop`             stop ticking, send stop, print `sent T1 T2 ...` (time.monotonic() just before
                     each tick was handed to JACK: the stimulus's own timeline) and exit
Consecutive sends are at least MIN_GAP_S apart (a late tick is not sent back to back with the one
before), so no two land in one JACK period (python-rtmidi's JACK input mishandles that).
"""
from __future__ import annotations

import os
import sys
import threading
import time

import mido

PPQN = 24


def sleep_until(target: float) -> None:
    while True:
        left = target - time.monotonic()
        if left <= 0:
            return
        time.sleep(left - 0.001 if left > 0.0015 else 0)


def main(client: str, tempo: float, min_gap: float) -> None:
    try:
        os.nice(-10)         # a stimulus that keeps time; allowed as root (CI), harmless where not
    except OSError:
        pass
    port = mido.Backend("mido.backends.rtmidi/UNIX_JACK", load=True).open_output(
        "ctl", virtual=True, client_name=client)
    period = 60.0 / tempo / PPQN
    pending: list = []
    lock = threading.Lock()
    go, stop = threading.Event(), threading.Event()

    def commands():
        for line in sys.stdin:
            words = line.split()
            if words[:1] == ["go"]:
                go.set()
            elif words[:1] == ["cc"]:
                with lock:
                    pending.append(mido.Message("control_change", control=int(words[1]), value=int(words[2])))
            elif words[:1] == ["stop"]:
                break
        stop.set()
        go.set()

    threading.Thread(target=commands, daemon=True).start()
    print("ready", flush=True)
    go.wait()
    sent: list[float] = []
    if not stop.is_set():
        port.send(mido.Message("start"))
        last = time.monotonic()
        t0 = last + 0.01
        while not stop.is_set():
            sleep_until(max(t0 + len(sent) * period, last + min_gap))
            sent.append(time.monotonic())
            port.send(mido.Message("clock"))
            last = time.monotonic()
            with lock:
                msgs, pending[:] = list(pending), []
            for msg in msgs:
                sleep_until(last + period / 2)
                port.send(msg)
                last = time.monotonic()
        sleep_until(last + min_gap)
        port.send(mido.Message("stop"))
    time.sleep(0.3)              # let JACK deliver the last events before the port closes
    port.close()
    print("sent " + " ".join(f"{t:.6f}" for t in sent), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]))
