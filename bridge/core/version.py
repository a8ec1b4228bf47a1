"""The latent-bridge version (also bridge.__version__ and the daemon's `hello` reply)."""
__version__ = "0.1.0"
