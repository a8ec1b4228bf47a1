"""latent-bridge runtime: MusicVAE on onnxruntime. Never imports torch."""
from .notes import Note, STEPS_PER_BAR, STEPS_PER_BEAT
from .codecs import CodecError, DrumCodec, MelodyCodec, SequenceCodec

__version__ = "0.1.0"

__all__ = ["Note", "STEPS_PER_BAR", "STEPS_PER_BEAT", "CodecError", "DrumCodec", "MelodyCodec",
           "SequenceCodec", "load_model", "ModelError", "__version__"]


def __getattr__(name):
    # the engine pulls in onnxruntime: load it only when asked for
    if name in ("load_model", "ModelError", "Model"):
        from . import engine
        return getattr(engine, name)
    raise AttributeError(name)
