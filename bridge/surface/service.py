"""The surface side of `serve`: `SurfaceHub` (the surface sessions, the actions, the feedback) and
the options `--surface TOML`, `--web PORT`, `--web-host HOST` (`add_arguments`, `configure`).

The OSC address space is always on (loopback surfaces only, unless surface.toml lists hosts);
`--web` adds the browser page. `configure` is a start hook of the serve loop (bridge.cli.serve),
run after bridge.live.ops.configure so MIDI in is open: its notes feed the phrase recorder.
"""
from __future__ import annotations

import argparse
import logging
import threading
from collections import OrderedDict
from typing import Callable

from ..core.errors import LiveError
from ..daemon.server import event
from ..live import ops as live_ops
from .actions import Actions
from .config import SurfaceConfig
from .feedback import Feedback
from .osc import OscSurface
from .phrase import PhraseRecorder
from .session import Outbox, SurfaceSession
from .state import SurfaceState
from .web import WebSurface, log_url

MAX_SURFACES = 64        # surface sessions kept; the least recently heard idle one goes beyond it


class SurfaceHub:
    """The surfaces of one daemon: their sessions, the actions, the feedback thread, the page."""

    def __init__(self, server, config: SurfaceConfig = SurfaceConfig(), recorder: PhraseRecorder | None = None,
                 max_surfaces: int = MAX_SURFACES):
        """Args:
            server: the running BridgeServer. config: surface.toml. recorder: MIDI in phrases (None: none).
            max_surfaces: sessions kept.
        """
        self.server, self.config, self.max_surfaces = server, config, max_surfaces
        self.actions = Actions(server, config, recorder)
        self.osc = OscSurface(self, config)
        self.web: WebSurface | None = None
        self.feedback = Feedback(self.sessions, lambda: sorted(server.models), config.rate_hz)
        self._sessions: OrderedDict[tuple, SurfaceSession] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, web_host: str | None = None, web_port: int | None = None) -> "SurfaceHub":
        """Route the address space, start the feedback and (with a port) the page.

        Raises:
            OSError: the page's port cannot be bound.
        """
        self.server.add_route(self.osc)
        if web_port is not None:
            self.web = WebSurface(self, web_host or "127.0.0.1", web_port)
            self.web.start()
        self.feedback.start()
        return self

    def session(self, key: tuple, outbox: Callable[[], Outbox]) -> SurfaceSession:
        """The session of surface `key`, created (with `outbox()`) on first use."""
        evicted = []
        with self._lock:
            s = self._sessions.get(key)
            if s is not None:
                self._sessions.move_to_end(key)
                return s
            names = sorted(self.server.models)
            model = self.config.model if self.config.model in self.server.models else (names[0] if names else None)
            s = SurfaceSession(self.server, key, outbox(), SurfaceState(model))
            self._sessions[key] = s
            for k in list(self._sessions):
                if len(self._sessions) <= self.max_surfaces:
                    break
                if k != key and self._sessions[k].idle:
                    evicted.append(self._sessions.pop(k))
        for x in evicted:
            x.close()
        if model is not None:
            self.actions.set_model(s, model)
        return s

    def remove(self, key: tuple) -> None:
        """Close and forget the session of `key` (a page closed)."""
        with self._lock:
            s = self._sessions.pop(key, None)
        if s is not None:
            s.close()

    def sessions(self) -> list[SurfaceSession]:
        with self._lock:
            return list(self._sessions.values())

    def close(self) -> None:
        """Stop the page and the feedback, close every surface session (a shutdown hook)."""
        if self.web is not None:
            self.web.close()
        self.feedback.close()
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for s in sessions:
            s.close()


def _web_port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"--web takes a TCP port 1..65535 (0: any free one), got {text!r}")
    return v


def add_arguments(parser) -> None:
    """The serve command's surface options."""
    g = parser.add_argument_group("control surfaces (bridge.surface, docs/surfaces.md)")
    g.add_argument("--surface", default=None, metavar="TOML",
                   help="surface.toml: rename the /lb/... addresses, feedback port and rate (see surface.example.toml)")
    g.add_argument("--web", type=_web_port, default=None, metavar="PORT",
                   help="serve the browser control page on http://127.0.0.1:PORT/")
    g.add_argument("--web-host", default="127.0.0.1", metavar="HOST",
                   help="address of the control page (default loopback; another needs --allow-remote)")


def configure(server, args) -> SurfaceHub:
    """Start the surfaces (a start hook, after bridge.live.ops.configure).

    Raises:
        LiveError: a bad surface.toml, or --web-host beyond loopback without --allow-remote.
        OSError: the page's port cannot be bound.
    """
    config = SurfaceConfig.load(args.surface) if getattr(args, "surface", None) else SurfaceConfig()
    web_host = getattr(args, "web_host", "127.0.0.1")
    if getattr(args, "web", None) is not None and web_host not in ("127.0.0.1", "::1", "localhost") \
            and not getattr(args, "allow_remote", False):
        raise LiveError(f"--web-host {web_host}: the page has no authentication; pass --allow-remote to do it anyway")
    midi = live_ops.HUB.midi
    recorder = None
    if midi is not None and midi.inputs:
        recorder = PhraseRecorder(lambda: live_ops.HUB.midi.clock() if live_ops.HUB.midi is not None else None)
        midi.note_listeners.append(recorder.feed)
    hub = SurfaceHub(server, config, recorder).start(web_host, getattr(args, "web", None))
    server.ops.on_shutdown(hub.close)
    if hub.web is not None:
        log_url(hub.web)
    event(logging.INFO, "surface address space on", addresses=len(config.actions),
          reply_port=config.reply_port or "source", rate_hz=config.rate_hz)
    return hub
