"""`python -m bridge <command>`: the offline command line.

    python -m bridge models [--models DIR]
    python -m bridge sample --model drums_2bar -n 4 --out samples.mid --png samples.png
    python -m bridge interpolate a.mid b.mid --model mel_2bar --steps 8 --out interp.mid --png interp.png
    python -m bridge bench [--models DIR] [--model NAME,...]
    python -m bridge serve ...        (bridge.server, imported only when this command runs)

Each command lives in its own function (or module) with an `add_*_parser(subparsers)` registration.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .notes import BEATS_PER_BAR, Note


# ---------------------------------------------------------------------------------------------- helpers
def _add_model_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--model", required=required, help="model package name or path")
    p.add_argument("--models", action="append", default=[], metavar="DIR",
                   help="extra directory of model packages (repeatable)")
    p.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda"])


def _load(args):
    from .engine import load_model
    return load_model(args.model, provider=args.provider, models_dirs=args.models or None)


def _programs(model) -> tuple[dict, dict]:
    programs, names = {}, {}
    for i, t in enumerate(model.info["tracks"]):
        programs[i] = int(t.get("program", 0))
        names[i] = t.get("name", f"track {i}")
    return programs, names


def _concat(model, sequences: list[list[Note]], gap_bars: int = 0) -> list[Note]:
    """Sequences one after the other in one note list (each takes the model's length + gap)."""
    span = (model.bars + gap_bars) * BEATS_PER_BAR
    out = []
    for k, seq in enumerate(sequences):
        off = k * span
        out.extend(Note(n.pitch, n.start + off, n.end + off, n.velocity, n.track, n.is_drum) for n in seq)
    return out


def _write_outputs(model, sequences, args, titles) -> dict:
    written = {}
    if args.out:
        from .midi_io import write_midi
        programs, names = _programs(model)
        write_midi(_concat(model, sequences, args.gap_bars), args.out, tempo=args.tempo, programs=programs,
                   names=names)
        written["midi"] = str(args.out)
    if args.png:
        from .pianoroll import save_pianoroll_png
        save_pianoroll_png(sequences, args.png, titles=titles)
        written["png"] = str(args.png)
    return written


def _add_output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=None, help="MIDI file to write (the sequences one after another)")
    p.add_argument("--png", default=None, help="piano-roll picture to write (one panel per sequence)")
    p.add_argument("--tempo", type=float, default=120.0)
    p.add_argument("--gap-bars", type=int, default=0, help="silent bars between sequences in the MIDI file")


def read_input(path, model) -> list[Note]:
    """The notes of a MIDI file as the model's training data sees them (bridge.midi_io: the melody
    instrument / drums / trio tracks, quantized), starting at the first bar that has a note."""
    from .midi_io import read_notes
    notes = read_notes(path, model.kind)
    if not notes:
        return []
    first_bar = int(min(n.start for n in notes) // BEATS_PER_BAR) * BEATS_PER_BAR
    end = model.bars * BEATS_PER_BAR
    shifted = [Note(n.pitch, n.start - first_bar, n.end - first_bar, n.velocity, n.track, n.is_drum) for n in notes]
    return [Note(n.pitch, n.start, min(n.end, end), n.velocity, n.track, n.is_drum)
            for n in shifted if n.start < end]


# ---------------------------------------------------------------------------------------------- commands
def add_models_parser(sub) -> None:
    p = sub.add_parser("models", help="list the model packages")
    p.add_argument("--models", action="append", default=[], metavar="DIR", help="extra package directory")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_models)


def cmd_models(args) -> int:
    from .engine import _models_dirs, list_models
    found = list_models(_models_dirs(args.models or None))
    if args.json:
        print(json.dumps(found, indent=1))
        return 0
    if not found:
        print("no model packages found (bridge/models/ is empty; add --models DIR)")
    for m in found:
        if "error" in m:
            print(f"{m['name']:<20} BROKEN  {m['error']}")
        else:
            attrs = f"  attributes: {', '.join(m['attributes'])}" if m["attributes"] else ""
            print(f"{m['name']:<20} {m['kind']:<7} {m['bars']:>2} bars  z={m['z_size']:<4} "
                  f"{'hierarchical' if m['hierarchical'] else 'flat'}  {m['path']}{attrs}")
    return 0


def add_sample_parser(sub) -> None:
    p = sub.add_parser("sample", help="sample sequences from the prior")
    _add_model_args(p)
    p.add_argument("-n", type=int, default=4, help="number of sequences")
    p.add_argument("--temperature", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    _add_output_args(p)
    p.set_defaults(func=cmd_sample)


def cmd_sample(args) -> int:
    model = _load(args)
    seqs = model.sample(args.n, temperature=args.temperature, seed=args.seed)
    titles = [f"{model.name} sample {i + 1} (T={args.temperature}, seed={args.seed})" for i in range(len(seqs))]
    written = _write_outputs(model, seqs, args, titles)
    print(json.dumps({"model": model.name, "sequences": len(seqs), "notes": [len(s) for s in seqs], **written}))
    return 0


def add_interpolate_parser(sub) -> None:
    p = sub.add_parser("interpolate", help="morph between two MIDI clips through the latent space")
    p.add_argument("a", help="MIDI file of the start")
    p.add_argument("b", help="MIDI file of the end")
    _add_model_args(p)
    p.add_argument("--steps", type=int, default=8, help="sequences including both ends")
    p.add_argument("--method", default="slerp", choices=["slerp", "lerp"])
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=None)
    _add_output_args(p)
    p.set_defaults(func=cmd_interpolate)


def cmd_interpolate(args) -> int:
    model = _load(args)
    a, b = read_input(args.a, model), read_input(args.b, model)
    seqs = model.interpolate(a, b, steps=args.steps, temperature=args.temperature, method=args.method,
                             seed=args.seed)
    titles = [f"{model.name} {args.method} t={i / (len(seqs) - 1):.2f}" for i in range(len(seqs))]
    written = _write_outputs(model, seqs, args, titles)
    print(json.dumps({"model": model.name, "steps": len(seqs), "input_notes": [len(a), len(b)],
                      "notes": [len(s) for s in seqs], **written}))
    return 0


def add_accompany_parser(sub) -> None:
    from . import accompany
    accompany.add_parser(sub)


def add_serve_parser(sub, load: bool) -> None:
    """`serve` belongs to bridge.server; import it only when the command is serve."""
    if load:
        from . import server
        server.add_parser(sub)
    else:
        sub.add_parser("serve", help="run the OSC daemon (see python -m bridge serve --help)", add_help=False)


def add_bench_parser(sub) -> None:
    from . import bench
    bench.add_parser(sub)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bridge", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="command", required=True)
    add_models_parser(sub)
    add_sample_parser(sub)
    add_interpolate_parser(sub)
    add_accompany_parser(sub)
    add_bench_parser(sub)
    add_serve_parser(sub, load=command == "serve")
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    from .engine import ModelError
    try:
        return int(args.func(args) or 0)
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
