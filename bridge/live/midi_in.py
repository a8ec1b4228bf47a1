"""MIDI input read by polling, never by a callback on the MIDI driver's thread.

Why: python-rtmidi calls an input callback (mido's rtmidi ports always install one) on RtMidi's
native thread, which for JACK is the JACK process thread; the callback must take the GIL first.
While the daemon's decoding holds the GIL, that thread waits, and a synchronous JACK server (`jackd
-S`) then waits for it: every client's cycle runs late (xruns of 3-50 ms seen on a 2-core VM with the
daemon decoding), which shifts the whole JACK graph's timeline, not only ours; an asynchronous server
drops our input for those cycles instead. Polled, the native thread only queues the bytes (RtMidi's
own ring buffer) and never touches Python.

Arrival times: RtMidi stamps each message natively (delta seconds to the previous one) when the
driver hands it over. `ArrivalClock` turns those deltas back into `time.monotonic()` times, so the
poll interval and any GIL wait do not jitter the MIDI clock follower.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

from ..core.errors import LiveError

log = logging.getLogger("bridge.midi")

POLL_S = 0.001               # how often the queue is read (1 ms: below one 24-ppqn tick at 300 bpm by 8x)
QUEUE_SIZE = 4096            # RtMidi's ring buffer: ~30 s of clock at 120 bpm if polling ever stalls
OFFSET_WINDOW = 256          # messages in the running minimum of (poll time - native time)


def rtmidi_api(api_key: str | None) -> int:
    """python-rtmidi's API constant for mido's API name (UNIX_JACK, LINUX_ALSA, ...), or unspecified."""
    import rtmidi
    if not api_key:
        return rtmidi.API_UNSPECIFIED
    try:
        return getattr(rtmidi, f"API_{api_key}")
    except AttributeError:
        raise LiveError(f"unknown MIDI API {api_key!r}; compiled in: {rtmidi.get_compiled_api()}") from None


class ArrivalClock:
    """Monotonic arrival times from RtMidi's native delta stamps.

    The native stamps form their own timeline T (the sum of the deltas). A message is polled at
    monotonic time p >= its arrival, so arrival = T + offset with offset = min(p - T) over recent
    messages: the smallest poll delay seen bounds the true offset from above and a 1 ms poll finds
    it within a few messages. The window lets the offset follow if the two clocks drift apart."""

    def __init__(self, window: int = OFFSET_WINDOW):
        self._native = 0.0
        self._started = False
        self._offsets: deque = deque(maxlen=window)

    def arrival(self, delta: float, polled_at: float) -> float:
        """The arrival time (monotonic seconds) of a message with native `delta`, polled at `polled_at`."""
        if self._started:
            self._native += max(float(delta), 0.0)
        self._started = True
        self._offsets.append(polled_at - self._native)
        return self._native + min(self._offsets)


class PolledInput:
    """One MIDI input port: a thread polls python-rtmidi's queue and calls
    `on_message(msg, arrival)` (a mido Message, monotonic seconds) for each message.

    Args:
      port_name: the port as `input_names(api)` lists it.
      api_key: mido's API name (UNIX_JACK, LINUX_ALSA, ...) or None for the platform's.
      on_message: called on the polling thread, in arrival order.
    Raises:
      LiveError: no such port.
    """

    def __init__(self, port_name: str, api_key: str | None, on_message: Callable,
                 client_name: str = "latent-bridge"):
        import rtmidi
        self.name = port_name
        self.on_message = on_message
        self._rt = rtmidi.MidiIn(rtapi=rtmidi_api(api_key), name=client_name, queue_size_limit=QUEUE_SIZE)
        ports = self._rt.get_ports()
        if port_name not in ports:
            self._rt.delete()
            raise LiveError(f"MIDI input {port_name!r} is gone; available: {ports or 'none'}")
        self._rt.open_port(ports.index(port_name))
        self._rt.ignore_types(sysex=False, timing=False, active_sense=True)   # clock in, active sensing out
        self._clock = ArrivalClock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"midi-in {port_name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import mido
        while not self._stop.is_set():
            while True:
                item = self._rt.get_message()
                if item is None:
                    break
                data, delta = item
                at = self._clock.arrival(delta, time.monotonic())
                try:
                    msg = mido.Message.from_bytes(data)
                except ValueError:
                    log.debug("ignored malformed MIDI input %s", data)
                    continue
                try:
                    self.on_message(msg, at)
                except Exception:  # noqa: BLE001 - a bad message must not end the input
                    log.exception("MIDI input handler failed on %s", msg)
            self._stop.wait(POLL_S)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._rt.close_port()
        self._rt.delete()


def input_names(api_key: str | None) -> list[str]:
    """The input ports python-rtmidi sees with this API."""
    import rtmidi
    probe = rtmidi.MidiIn(rtapi=rtmidi_api(api_key))
    try:
        return probe.get_ports()
    finally:
        probe.delete()
