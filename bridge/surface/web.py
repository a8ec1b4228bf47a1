"""The browser control page: `serve --web PORT` serves the page's files (bridge/surface/web/, shipped
as package data) and a WebSocket at /ws on one port, with the `websockets` library (its threaded
server: one thread per connection, like the daemon's own threads).

Each page connection is a surface of its own (a SurfaceSession keyed ("web", n)). The page sends
`{"action": "knob/3", "args": [0.7]}` (the actions of the OSC address space, same checks); the
daemon sends `{"type": "state", ...}` when something changed (at most rate_hz a second) and
`{"type": "pattern", ...}` for each new pattern. WebSocket handshakes from another origin are refused
(403): a web site open in the same browser must not drive the daemon.
"""
from __future__ import annotations

import itertools
import json
import logging
import threading
from importlib import resources
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response
from websockets.sync.server import serve

from ..core.errors import BadRequest
from ..daemon.server import event
from .session import Outbox

log = logging.getLogger("bridge.surface")

FILES = {"/": ("index.html", "text/html; charset=utf-8"), "/index.html": ("index.html", "text/html; charset=utf-8"),
         "/app.js": ("app.js", "text/javascript; charset=utf-8"), "/style.css": ("style.css", "text/css; charset=utf-8")}
MAX_MESSAGE = 4096          # bytes of one message from a page
_IDS = itertools.count(1)


def page_file(name: str) -> bytes:
    """A file of the page, from the installed package."""
    return resources.files("bridge.surface").joinpath("web", name).read_bytes()


def parse_message(text) -> tuple[str, list]:
    """(action, args) of a page's message.

    Raises:
        BadRequest: not a JSON object {"action": str, "args": [numbers, strings, bools]} of up to 4 args.
    """
    try:
        obj = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        obj = None
    if not isinstance(obj, dict) or not isinstance(obj.get("action"), str):
        raise BadRequest('a page message is a JSON object {"action": "...", "args": [...]}')
    args = obj.get("args", [])
    if not isinstance(args, list) or len(args) > 4 or not all(isinstance(a, (int, float, str, bool)) for a in args):
        raise BadRequest("'args' must be a list of up to 4 numbers, strings or booleans")
    return obj["action"][:80], args


class WebOutbox(Outbox):
    """Feedback for a page: the state as one JSON message when it changed, each new pattern once."""

    def __init__(self, connection):
        self.connection = connection
        self.messages = 0
        self._last_state = None
        self._last_pattern = None
        self._lock = threading.Lock()        # the feedback thread and the connection's thread both send
        self.closed = False

    def flush(self, snapshot: dict, position: dict) -> int:
        pattern = snapshot.pop("pattern", None)
        state = dict(snapshot, type="state", position=position)
        n = 0
        if state != self._last_state:
            n += self.send(state)
            self._last_state = state
        if pattern is not None and pattern["id"] != self._last_pattern:
            n += self.send(dict(pattern, type="pattern"))
            self._last_pattern = pattern["id"]
        return n

    def send(self, obj: dict) -> int:
        """Send one JSON message; 0 when the page is gone."""
        if self.closed:
            return 0
        try:
            with self._lock:
                self.connection.send(json.dumps(obj, separators=(",", ":")))
            self.messages += 1
            return 1
        except (ConnectionClosed, OSError, RuntimeError):
            self.closed = True
            return 0

    def close(self) -> None:
        self.closed = True


class WebSurface:
    """The page's HTTP + WebSocket server."""

    def __init__(self, hub, host: str = "127.0.0.1", port: int = 8080):
        """Args:
            hub: the SurfaceHub (sessions, actions). host, port: where to listen (port 0: a free one).
        """
        self.hub, self.host, self.port = hub, host, port
        self._server = None
        self._thread: threading.Thread | None = None
        self.address: tuple | None = None

    def start(self) -> tuple:
        """Bind and serve from a thread.

        Returns:
            The bound (host, port).

        Raises:
            OSError: the port cannot be bound.
        """
        self._server = serve(self._connection, self.host, self.port, process_request=self._http,
                             max_size=MAX_MESSAGE, compression=None, server_header="latent-bridge")
        self.address = self._server.socket.getsockname()[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, name="surface-web", daemon=True)
        self._thread.start()
        return self.address

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def _http(self, connection, request):
        """The page's files over plain HTTP; /ws goes on to the WebSocket handshake (same origin only)."""
        path = urlsplit(request.path).path
        if path == "/ws":
            origin = request.headers.get("Origin")
            if origin is not None and urlsplit(origin).netloc != request.headers.get("Host"):
                return connection.respond(403, "the control page only takes connections from its own origin\n")
            return None
        entry = FILES.get(path)
        if entry is None:
            return connection.respond(404, "not found\n")
        body = page_file(entry[0])
        headers = Headers([("Content-Type", entry[1]), ("Content-Length", str(len(body))),
                           ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"),
                           ("Content-Security-Policy", "default-src 'self'; connect-src 'self'")])
        return Response(200, "OK", headers, body)

    def _connection(self, connection) -> None:
        key = ("web", next(_IDS))
        outbox = WebOutbox(connection)
        session = self.hub.session(key, lambda: outbox)
        try:
            for text in connection:
                session.touch()
                try:
                    action, args = parse_message(text)
                    self.hub.actions.dispatch(session, action, args)
                except Exception as e:  # noqa: BLE001 - the page hears why; the daemon goes on
                    self.hub.actions.report(session, e, "page message")
                    outbox.send({"type": "status", "status": session.surface.get("status")})
        except ConnectionClosed:
            pass
        finally:
            self.hub.remove(key)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(2.0)


def log_url(web: WebSurface) -> None:
    event(logging.INFO, f"control page on {web.url}", web=web.url)
