"""`python -m bridge <command>`: the command line.

    python -m bridge models [--models DIR]
    python -m bridge sample --model drums_2bar -n 4 --out samples.mid --png samples.png
    python -m bridge interpolate a.mid b.mid --model mel_2bar --steps 8 --out interp.mid --png interp.png
    python -m bridge accompany melody.mid --out band.mid --png band.png
    python -m bridge learn a.mid b.mid c.mid --model mel_2bar --out mine.palette.json
    python -m bridge bench [--models DIR] [--model NAME,...]
    python -m bridge serve ...        (the OSC daemon; imported only when this command runs)

One module per command group: commands (models, sample, interpolate and the shared helpers),
accompany, bench, serve; each has `add_parser(subparsers)` registrations.
"""
from __future__ import annotations

import argparse
import sys

from ..core.errors import BridgeError
from . import accompany, bench, commands, palette


def add_serve_parser(sub, load: bool) -> None:
    """`serve` pulls in the daemon and the live side: import them only when the command is serve."""
    if load:
        from . import serve
        serve.add_parser(sub)
    else:
        sub.add_parser("serve", help="run the OSC daemon (see python -m bridge serve --help)", add_help=False)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bridge", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="command", required=True)
    commands.add_models_parser(sub)
    commands.add_sample_parser(sub)
    commands.add_interpolate_parser(sub)
    palette.add_parser(sub)
    accompany.add_parser(sub)
    bench.add_parser(sub)
    add_serve_parser(sub, load=command == "serve")
    return parser


def main(argv=None) -> int:
    """Run one command; 2 (with the message on stderr) for a BridgeError (a bad package, a file
    without what the command needs, ...), a missing file or a bad value."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (BridgeError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
