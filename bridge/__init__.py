"""latent-bridge runtime: MusicVAE on onnxruntime. Never imports torch.

The public names: `bridge.Note`, the codecs, `bridge.load_model` / `bridge.Model`, the errors. The
package is a stack of layers, each importing only from the ones before it (docs/architecture.md):

    core      notes, codecs, latent math, attributes, windows, directions, errors   (numpy only)
    io        MIDI files, piano-roll pictures
    runtime   the package format, onnxruntime sessions, the Model and its decode loop, accompaniment
    daemon    the OSC protocol, op registry, sessions, server, client
    live      clock and transport, morphs, knobs, MIDI in/out, the live ops
    cli       `python -m bridge ...`
"""
from .core.codecs import CodecError, DrumCodec, MelodyCodec, SequenceCodec
from .core.errors import BridgeError, ModelError
from .core.notes import STEPS_PER_BAR, STEPS_PER_BEAT, Note
from .core.version import __version__

__all__ = ["Note", "STEPS_PER_BAR", "STEPS_PER_BEAT", "CodecError", "DrumCodec", "MelodyCodec",
           "SequenceCodec", "load_model", "Model", "ModelError", "BridgeError", "__version__"]


def __getattr__(name):
    # the runtime's Model: imported only when asked for
    if name in ("load_model", "Model"):
        from .runtime import engine
        return getattr(engine, name)
    raise AttributeError(name)
