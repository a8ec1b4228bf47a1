"""Every error latent-bridge raises, under one root: `BridgeError`.

Each class carries the protocol error code (docs/osc-protocol.md) the daemon answers with when the
error escapes an op, so no op chooses a code by hand: raise the class that says what went wrong and
`bridge.daemon.protocol.error_reply` turns it into `/bridge/error id code message`. Anything that is
not a BridgeError is a bug and is answered `internal`.

    BridgeError                      internal
    ├── BadRequest                   bad_request   the request (or the caller's input) is wrong
    │   ├── InvalidInput             bad_request   also a ValueError: notes, tokens, MIDI, live values
    │   │   ├── CodecError                         notes or tokens a codec cannot represent
    │   │   ├── MidiError                          a MIDI file that cannot be used (`reason` key)
    │   │   └── LiveError                          a live request that cannot be honoured
    │   ├── DirectionError           bad_request   also a KeyError: no such attribute / direction
    │   └── ModelError               bad_request   a package that is broken or cannot do what was asked
    ├── UnknownModel                 unknown_model
    ├── UnknownOp                    unknown_op
    ├── TooLarge                     too_large
    └── Busy                         busy
        └── Cancelled                busy          work stopped because it was no longer wanted

The client side adds `ErrorReply` (an error answer, with the code the daemon sent) and
`BridgeTimeout` (bridge.daemon.client). Numpy only; nothing here knows about OSC.
"""
from __future__ import annotations

# the codes of /bridge/error, in the order docs/osc-protocol.md lists them
ERROR_CODES = ("bad_request", "unknown_model", "unknown_op", "too_large", "busy", "internal")


class BridgeError(Exception):
    """The root of latent-bridge's errors. `code`: the protocol error code; `message`: the text."""

    code = "internal"

    def __init__(self, message: str = ""):
        super().__init__(message)
        self.message = str(message)

    def __str__(self) -> str:   # plain text even where a base (KeyError) would quote it
        return self.message


class BadRequest(BridgeError):
    """What was asked for is wrong: a missing or mistyped field, values out of range."""

    code = "bad_request"


class InvalidInput(BadRequest, ValueError):
    """Input the code cannot work with (notes, tokens, a melody, a value); also a ValueError."""


class CodecError(InvalidInput):
    """Notes or tokens that a codec cannot represent."""


class MidiError(InvalidInput):
    """A MIDI file that cannot be used; `reason` is a short key for counting skips."""

    def __init__(self, message: str, reason: str = "unreadable"):
        super().__init__(message)
        self.reason = reason


class LiveError(InvalidInput):
    """A live request that cannot be honoured (bad transport, morph or knob values, knobs.toml)."""


class DirectionError(BadRequest, KeyError):
    """No attribute vector or direction of that name (or index); also a KeyError."""


class ModelError(BadRequest):
    """A model package that cannot be used (missing, corrupt, not matching its manifest), or a model
    asked for something it cannot do (accompany on a model without a surrogate encoder). The daemon
    meets it only in the second form, caused by the request: hence bad_request."""


class UnknownModel(BridgeError):
    """The request names a model the daemon has not loaded."""

    code = "unknown_model"


class UnknownOp(BridgeError):
    """No op of that name is registered."""

    code = "unknown_op"


class TooLarge(BridgeError):
    """Over a request limit (sizes, counts, datagram bytes)."""

    code = "too_large"


class Busy(BridgeError):
    """The daemon cannot take the request now (queue full, shutting down)."""

    code = "busy"


class Cancelled(Busy):
    """Work stopped before it finished because it was no longer wanted (a superseded morph's decode,
    stopped between two decode steps)."""
