"""`python -m bridge serve`: the OSC daemon with every op: the core ops (bridge.daemon.ops), the live
ops and MIDI options (bridge.live.ops), and the ops of each `--ops-module`.

This is where the daemon's OpRegistry is built and handed to the server (bridge.daemon.server), so
the daemon itself never imports the live side.
"""
from __future__ import annotations

import argparse
import importlib
import logging

from ..daemon import ops as core_ops
from ..daemon import server
from ..daemon.registry import OpRegistry
from ..live import ops as live_ops
from ..surface import service as surface
from ..runtime import engine
from .commands import add_precision_arg


def build_registry(ops_modules=()) -> OpRegistry:
    """The ops `serve` serves: core (with the palette ops), live, then the modules named (imported here).

    Raises:
        ImportError (or what the module raises on import); ValueError: an op name taken twice.
    """
    registry = core_ops.core_registry().include(live_ops)
    for name in ops_modules:
        registry.include(importlib.import_module(name))
    return registry


def configure_parser(p: argparse.ArgumentParser) -> None:
    """The daemon's options, --precision, the live MIDI ones and the surface ones (--surface, --web)."""
    server.configure_parser(p)
    add_precision_arg(p)
    live_ops.add_arguments(p)
    surface.add_arguments(p)


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="run the OSC daemon",
                       description="Serve the models over OSC/UDP (docs/osc-protocol.md).")
    configure_parser(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Build the registry and run the daemon (bridge.daemon.server.main); 2 when an ops module
    cannot be imported or $LATENT_BRIDGE_PRECISION is not a precision.

    --precision becomes the process default (bridge.runtime.engine.set_default_precision), so every
    model the daemon loads takes it; each load logs which precision it runs at and why."""
    try:
        registry = build_registry(args.ops_module)
    except Exception as e:
        server.setup_logging(args.log_level, args.log_format)
        server.event(logging.ERROR, "cannot import an ops module", error=f"{type(e).__name__}: {e}")
        return 2
    try:
        engine.set_default_precision(getattr(args, "precision", None))
        engine.default_precision()          # a bad $LATENT_BRIDGE_PRECISION fails here, not once per model
    except ValueError as e:
        server.setup_logging(args.log_level, args.log_format)
        server.event(logging.ERROR, "bad decoder step precision", error=str(e))
        return 2
    return server.main(args, registry, on_start=(live_ops.configure, surface.configure))
