"""The surface address space over the daemon's UDP socket: `OscSurface` (the route) and
`OscOutbox` (feedback as typed OSC messages).

The route claims the input addresses of surface.toml and everything under their first path segment
(/lb/...), so a mistyped address gets an error back instead of silence. A surface is the sending
host plus its reply port (surface.toml `reply_port`; "source": the port it sends from), so tools that
send each message from a new port (oscsend) still drive one surface. Only loopback hosts and the
`hosts` of surface.toml may drive it: surfaces carry no token.
"""
from __future__ import annotations

import ipaddress
import logging
import threading

from ..core.errors import BadRequest
from ..daemon.protocol import build_message
from ..daemon.server import event
from .config import KNOBS, SurfaceConfig
from .session import Outbox

MAX_MESSAGES_PER_FLUSH = 16      # feedback messages one surface gets per round (rate_hz rounds a second)
MAX_NOTE_EVENTS = 256            # note events of one pattern (osc_notes)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class OscOutbox(Outbox):
    """Feedback for an OSC surface: each changed value as its own typed message, at most
    MAX_MESSAGES_PER_FLUSH per round (the rest go in the next rounds)."""

    def __init__(self, server, address: tuple, config: SurfaceConfig):
        """Args:
            server: the BridgeServer (its socket sends the datagrams). address: (host, port) of the surface.
            config: its addresses and osc_notes.
        """
        self.server, self.address, self.config = server, tuple(address), config
        self.sent: dict = {}              # feedback address -> the arguments last sent
        self.closed = False
        self.messages = 0
        self._lock = threading.Lock()

    def _wanted(self, snap: dict, position: dict) -> list[tuple]:
        a = self.config.addresses
        out = [(a["model"], (snap["model"] or "",)), (a["temperature"], (float(snap["temperature"]),)),
               (a["status"], (snap["status"],))]
        for i in range(KNOBS):
            knob = a[f"knob/{i + 1}"]
            out.append((knob + "/label", (snap["labels"][i],)))
            out.append((knob, (float(snap["knobs"][i]),)))
        out.append((a["xy"], tuple(float(v) for v in snap["xy"])))
        if position.get("bar") is not None:
            out.append((a["bar"], (int(position["bar"]),)))
        return out

    def flush(self, snapshot: dict, position: dict) -> int:
        if self.closed:
            return 0
        with self._lock:
            n = 0
            for address, args in self._wanted(snapshot, position):
                if n >= MAX_MESSAGES_PER_FLUSH:
                    break
                if self.sent.get(address) != args:
                    self._send(address, *args)
                    self.sent[address] = args
                    n += 1
            pattern = snapshot.get("pattern")
            if self.config.osc_notes and pattern and self.sent.get("pattern") != pattern["id"] \
                    and n < MAX_MESSAGES_PER_FLUSH:
                n += self._notes(pattern)
                self.sent["pattern"] = pattern["id"]
            self.messages += n
            return n

    def _notes(self, pattern: dict) -> int:
        """A new pattern as note events: /lb/pattern i bar, i bars, i count; then /lb/note per note
        (i pitch, f start_beat, f duration_beats, i velocity, i track)."""
        notes = pattern["notes"][:MAX_NOTE_EVENTS]
        bar = pattern["bar"] if pattern["bar"] is not None else -1
        self._send(self.config.addresses["pattern"], int(bar), int(pattern["bars"]), len(notes))
        for p, s, d, v, t in notes:
            self._send(self.config.addresses["note"], int(p), float(s), float(d), int(v), int(t))
        return 1 + len(notes)

    def _send(self, address: str, *args) -> None:
        self.server.send_datagram(build_message(address, args), self.address)

    def status(self, text: str) -> None:
        """Send the status line at once (an error about the message just received)."""
        address = self.config.addresses["status"]
        with self._lock:
            self._send(address, text)
            self.sent[address] = (text,)

    def close(self) -> None:
        self.closed = True


class OscSurface:
    """The server route (BridgeServer.add_route) of the surface address space."""

    def __init__(self, hub, config: SurfaceConfig):
        """Args:
            hub: the SurfaceHub (sessions, actions). config: the addresses, reply port, hosts.
        """
        self.hub, self.config = hub, config
        self.actions = config.actions
        self.prefixes = config.prefixes
        self.hosts = frozenset(config.hosts)

    def claims(self, address: str) -> bool:
        """An input address, or any address under one of their first segments (/lb/...)."""
        return address in self.actions or address.startswith(self.prefixes)

    def handle(self, address: str, params: list, source: tuple) -> None:
        """One typed message from `source` (receive thread): act, or send the error as the status."""
        host = source[0]
        if not (_loopback(host) or host in self.hosts):
            event(logging.WARNING, "surface message from a host not in surface.toml hosts: dropped",
                  client=f"{host}:{source[1]}", address=address[:100])
            return
        port = self.config.reply_port or source[1]
        session = self.hub.session((host, port), lambda: OscOutbox(self.hub.server, (host, port), self.config))
        session.touch()
        action = self.actions.get(address)
        try:
            if action is None:
                raise BadRequest(f"unknown address {address[:80]} (surface.toml maps: "
                                 f"{', '.join(sorted(self.actions))})")
            self.hub.actions.dispatch(session, action, params, address)
        except Exception as e:  # noqa: BLE001 - whatever it was, the surface hears why, the daemon goes on
            self.hub.actions.report(session, e, address[:80])
            session.outbox.status(session.surface.get("status"))
