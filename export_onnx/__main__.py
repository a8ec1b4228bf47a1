"""`python -m export_onnx <command>`: the torch-side command line.

Each command lives in its own module with an `add_parser(subparsers)` function that registers the
subcommand and sets `func`; add a module name to COMMANDS to plug a new one in. Modules are imported
only when listed here, so a command's heavy imports (torch) cost nothing to the others' --help.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# module (inside export_onnx) per subcommand, in --help order
COMMANDS = [
    "dataset",            # export_onnx.dataset: MIDI folders -> token windows + splits
    "train",              # export_onnx.train
    "bench_train",        # export_onnx.bench_train: training examples/s of each path
    "evaluate",           # export_onnx.evaluate
    "export",             # export_onnx.export
    "tiny",               # export_onnx.tiny (registers "make-tiny": random-weight packages)
    "directions",         # export_onnx.directions: attribute vectors + principal directions
    "model_card",         # export_onnx.model_card: MODEL_CARD.md + training curve
    "magenta_import",     # export_onnx.magenta_import (registers "import-magenta")
    "surrogate",          # export_onnx.surrogate (registers "train-surrogate", "add-surrogate")
    "audit",              # export_onnx.audit: musical audit of a package (audit.json + card section)
    "int8",               # export_onnx.int8 (registers "add-int8": an int8 decoder step behind a quality gate)
    "pair",               # export_onnx.pair (registers "add-sampler": a low-KL prior sampler inside a package)
    "latent_prior",       # export_onnx.latent_prior (registers "fit-prior": a Gaussian fitted to the package's codes)
    "latent_chain",       # export_onnx.latent_chain ("chain-codes", "train-chain", "chain-package": mel_16bar over mel_2bar)
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m export_onnx", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"export_onnx.{name}").add_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
