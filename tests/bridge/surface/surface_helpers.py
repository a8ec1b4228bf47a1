"""Helpers for the surface tests: liblo's oscdump as the surface's receiving side, oscsend as its
sending side, and the shipped models the daemon serves."""
from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "bridge" / "models"
sys.path.insert(0, str(ROOT / "tests" / "bridge" / "daemon"))
from test_server import _free_udp_port  # noqa: E402  (the daemon tests' helper, reused)

_LINE = re.compile(r"(/\S+) (\w*) ?(.*)$")       # oscdump: [timetag] path types args
_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')


def parse_args(types: str, text: str) -> list:
    """oscdump's printed arguments as Python values, by their type tags."""
    toks = [m.group(1) if m.group(1) is not None else m.group(2) for m in _ARG.finditer(text)]
    out = []
    for t, tok in zip(types, toks):
        out.append(int(tok) if t in "ih" else float(tok) if t in "fd" else tok)
    return out


def oscsend(port: int, address: str, types: str = "", *args) -> None:
    """liblo's oscsend: one typed message to the daemon (each from a new source port)."""
    subprocess.run(["oscsend", "127.0.0.1", str(port), address, types, *[str(a) for a in args]],
                   check=True, timeout=10, capture_output=True)


class OscDump:
    """liblo's oscdump on a UDP port: every message received, parsed, in order."""

    def __init__(self, port: int | None = None):
        self.port = port or _free_udp_port()
        self.proc = subprocess.Popen(["oscdump", "-L", str(self.port)], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.messages: list[tuple[str, str, list]] = []
        self._new = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            m = _LINE.search(line.strip())
            if m:
                with self._new:
                    self.messages.append((m.group(1), m.group(2), parse_args(m.group(2), m.group(3))))
                    self._new.notify_all()

    def wait_for(self, pred, timeout: float = 20.0, since: int = 0):
        """The first message (from index `since`) with pred(address, types, args), waiting for it to
        arrive; AssertionError with what did arrive when it does not."""
        deadline = time.monotonic() + timeout
        with self._new:
            while True:
                for i in range(since, len(self.messages)):
                    if pred(*self.messages[i]):
                        return i, self.messages[i]
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = self.messages[-15:]
                    raise AssertionError(f"no such message in {timeout} s; the last ones: {tail}")
                self._new.wait(left)

    def mark(self) -> int:
        with self._new:
            return len(self.messages)

    def patterns(self, since: int = 0) -> list[list[tuple]]:
        """The complete patterns (osc_notes: /lb/pattern then its /lb/note events) from `since`."""
        with self._new:
            msgs = self.messages[since:]
        out, i = [], 0
        while i < len(msgs):
            a, _, args = msgs[i]
            if a == "/lb/pattern":
                notes = [tuple(m[2]) for m in msgs[i + 1:i + 1 + args[2]] if m[0] == "/lb/note"]
                if len(notes) == args[2]:
                    out.append(notes)
            i += 1
        return out

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


def note_rows(notes) -> list[tuple]:
    """bridge.Note list -> the (pitch, start, duration, velocity, track) of /lb/note events."""
    return [(n.pitch, round(n.start, 4), round(n.end - n.start, 4), n.velocity, n.track) for n in notes]
