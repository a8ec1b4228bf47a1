"""A JACK MIDI monitor in its own process (test_midi_jack.py's listener).

    python jack_monitor.py CLIENT_NAME

Registers CLIENT_NAME:input; prints `ready` once active, then one line per MIDI event received,
`SECONDS FRAME HEX...`: SECONDS is time.monotonic() when JACK ran this client's cycle plus the
event's offset in it, FRAME JACK's frame time. The test judges timing on SECONDS, not FRAME: on a
busy VM the dummy driver runs cycles late (xruns) and restarts its schedule, so JACK's frame count
falls behind real time by every xrun (tens of ms over a second), while a late cycle only shifts
what it delivers by its own lateness. Reads the port buffer itself (JACK-Client): python-rtmidi's
JACK input loses the second of two events in one period. Exits on `stop` or end of stdin.
"""
from __future__ import annotations

import gc
import sys
import threading
import time
from collections import deque

import jack


def main(name: str) -> None:
    # The process callback runs Python on JACK's real-time thread, so it needs this process's GIL:
    # nothing else here may hold it for long (a synchronous server waits for this client). No
    # garbage collector pauses (the process lives seconds), and the main thread prints twice a second.
    gc.disable()
    client = jack.Client(name, no_start_server=True)
    port = client.midi_inports.register("input")
    seconds_per_frame = 1.0 / client.samplerate
    received: deque = deque()

    @client.set_process_callback
    def process(frames):
        now = time.monotonic()
        base = client.last_frame_time
        for offset, data in port.incoming_midi_events():
            received.append((now + offset * seconds_per_frame, base + offset, bytes(data)))

    done = threading.Event()

    def commands():
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        done.set()

    threading.Thread(target=commands, daemon=True).start()
    with client:
        print("ready", flush=True)
        while True:
            finished = done.wait(0.5)
            while received:
                t, frame, data = received.popleft()
                print(f"{t:.6f} {frame} {data.hex(' ')}")
            sys.stdout.flush()
            if finished:
                break


if __name__ == "__main__":
    main(sys.argv[1])
