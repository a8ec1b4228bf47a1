"""surface.toml: which OSC address does what, where feedback goes, how fast.

    reply_port = 9001        # feedback goes to the sending host at this port ("source": the port it sends from)
    rate_hz = 20             # feedback messages per surface: at most this many rounds a second
    tempo = 120.0            # the free-running tempo when no MIDI clock comes in
    model = "mel_2bar"       # the model a new surface starts with (default: the first loaded)
    osc_notes = false        # also send each new pattern as /lb/pattern + /lb/note messages
    morph_steps = 8
    morph_mode = "loop"      # once | loop | pingpong
    hosts = []               # non-loopback hosts allowed to drive the surface space
    [addresses]              # rename any address: action = "/new/address"
    "knob/1" = "/1/fader1"
    sample = "/1/push1"

Every action has a default address under /lb (DEFAULT_ADDRESSES); a renamed one answers only at
its new address.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import LiveError

KNOBS = 8
PREFIX = "/lb"

# action -> default address. Inputs: the surface sends them; feedback: the daemon sends them.
INPUTS = {**{f"knob/{i}": f"{PREFIX}/knob/{i}" for i in range(1, KNOBS + 1)},
          "model": f"{PREFIX}/model", "temperature": f"{PREFIX}/temperature", "sample": f"{PREFIX}/sample",
          "morph/go": f"{PREFIX}/morph/go", "morph/stop": f"{PREFIX}/morph/stop",
          "a/learn": f"{PREFIX}/a/learn", "b/learn": f"{PREFIX}/b/learn", "xy": f"{PREFIX}/xy"}
FEEDBACK = {"status": f"{PREFIX}/status", "bar": f"{PREFIX}/bar", "pattern": f"{PREFIX}/pattern",
            "note": f"{PREFIX}/note"}
DEFAULT_ADDRESSES = {**INPUTS, **FEEDBACK}
MORPH_MODES = ("once", "loop", "pingpong")


@dataclass(frozen=True)
class SurfaceConfig:
    """What surface.toml says (defaults without one).

    Attributes:
        addresses: action -> OSC address (inputs and feedback).
        reply_port: the port feedback goes to on the sending host; None: the port it sends from.
        rate_hz: feedback rounds per second. tempo: bpm of the free-running clock.
        model: the model a new surface starts with (None: the first loaded).
        osc_notes: send patterns as OSC note events too. morph_steps, morph_mode: of /lb/morph/go.
        hosts: non-loopback hosts allowed to drive the surface space.
    """
    addresses: dict = field(default_factory=lambda: dict(DEFAULT_ADDRESSES))
    reply_port: int | None = 9001
    rate_hz: float = 20.0
    tempo: float = 120.0
    model: str | None = None
    osc_notes: bool = False
    morph_steps: int = 8
    morph_mode: str = "loop"
    hosts: tuple = ()

    @property
    def actions(self) -> dict:
        """address -> input action (the route's table)."""
        return {self.addresses[a]: a for a in INPUTS}

    @property
    def prefixes(self) -> tuple:
        """The first path segments of every input address, with a trailing "/": a message under one
        of them that names no action is answered with an error instead of being dropped."""
        return tuple(sorted({"/" + a.split("/")[1] + "/" for a in self.actions}))

    @classmethod
    def load(cls, path) -> "SurfaceConfig":
        """Read a surface.toml.

        Raises:
            LiveError: unreadable TOML, an unknown key or action, a value of the wrong type or range,
                an address used twice or not starting with "/", or under /bridge/.
        """
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise LiveError(f"{path}: {e}") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: dict, where: str = "surface.toml") -> "SurfaceConfig":
        """A config from parsed TOML (see `load`)."""
        known = {"reply_port", "rate_hz", "tempo", "model", "osc_notes", "morph_steps", "morph_mode", "hosts",
                 "addresses"}
        extra = sorted(set(data) - known)
        if extra:
            raise LiveError(f"{where}: unknown key(s) {extra}; known: {sorted(known)}")
        addresses = dict(DEFAULT_ADDRESSES)
        for action, address in (data.get("addresses") or {}).items():
            if action not in DEFAULT_ADDRESSES:
                raise LiveError(f"{where}: [addresses] has no action {action!r}; actions: {sorted(DEFAULT_ADDRESSES)}")
            if not isinstance(address, str) or not address.startswith("/") or address.startswith("/bridge/") \
                    or not 2 <= len(address) <= 200 or " " in address:
                raise LiveError(f"{where}: address of {action!r} must start with / (outside /bridge/, no spaces), "
                                f"got {address!r}")
            addresses[action] = address
        used = [addresses[a] for a in INPUTS]
        if len(set(used)) != len(used):
            raise LiveError(f"{where}: two actions share one address")
        reply = data.get("reply_port", 9001)
        if reply == "source":
            reply = None
        elif isinstance(reply, bool) or not isinstance(reply, int) or not 1 <= reply <= 65535:
            raise LiveError(f"{where}: reply_port must be 1..65535 or \"source\", got {reply!r}")
        cfg = cls(addresses=addresses, reply_port=reply,
                  rate_hz=_number(data, "rate_hz", 20.0, 1.0, 60.0, where),
                  tempo=_number(data, "tempo", 120.0, 20.0, 999.0, where),
                  model=data.get("model"), osc_notes=bool(data.get("osc_notes", False)),
                  morph_steps=int(_number(data, "morph_steps", 8, 2, 64, where)),
                  morph_mode=data.get("morph_mode", "loop"), hosts=tuple(data.get("hosts", ())))
        if cfg.model is not None and not isinstance(cfg.model, str):
            raise LiveError(f"{where}: model must be a model name")
        if cfg.morph_mode not in MORPH_MODES:
            raise LiveError(f"{where}: morph_mode must be one of {MORPH_MODES}, got {cfg.morph_mode!r}")
        if not all(isinstance(h, str) for h in cfg.hosts):
            raise LiveError(f"{where}: hosts must be a list of addresses")
        return cfg


def _number(data: dict, key: str, default, lo: float, hi: float, where: str) -> float:
    v = data.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise LiveError(f"{where}: {key} must be a number {lo:g}..{hi:g}, got {v!r}")
    return float(v)
