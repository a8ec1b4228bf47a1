"""The offline commands `models`, `sample` and `interpolate`, and the helpers the commands share.

    python -m bridge models [--models DIR]
    python -m bridge sample --model drums_2bar -n 4 --out samples.mid --png samples.png
    python -m bridge interpolate a.mid b.mid --model mel_2bar --steps 8 --out interp.mid --png interp.png
"""
from __future__ import annotations

import argparse
import json

from ..core.notes import BEATS_PER_BAR, Note
from ..runtime.engine import PRECISIONS, load_model
from ..runtime.package import list_models, search_dirs


# ---------------------------------------------------------------------------------------------- helpers
PRECISION_HELP = ("decoder step precision: fp32, int8 (the package's int8 step where it has one) or auto "
                  "(int8 only where its measured agreement passed the 0.98 gate; the default, unless "
                  "$LATENT_BRIDGE_PRECISION says otherwise)")


def precision_arg(text: str) -> str:
    """argparse type of --precision: fp32, int8 or auto."""
    value = text.strip().lower()
    if value not in PRECISIONS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(PRECISIONS)}, got {text!r}")
    return value


def precision_list_arg(text: str) -> list[str]:
    """argparse type of a comma-separated list of precisions ("fp32,int8"), each checked, no repeats."""
    values = [precision_arg(v) for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(PRECISIONS)}")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"a precision is listed twice in {text!r}")
    return values


def add_precision_arg(p: argparse.ArgumentParser) -> None:
    """--precision fp32|int8|auto (default: the process default, bridge.runtime.engine.default_precision)."""
    p.add_argument("--precision", type=precision_arg, default=None, metavar="{fp32,int8,auto}", help=PRECISION_HELP)


def add_model_args(p: argparse.ArgumentParser, required: bool = True, default: str | None = None) -> None:
    p.add_argument("--model", required=required and default is None, default=default,
                   help="model package name or path" + (f" (default {default})" if default else ""))
    p.add_argument("--models", action="append", default=[], metavar="DIR",
                   help="extra directory of model packages (repeatable)")
    p.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda"])
    add_precision_arg(p)


def load(args):
    """The model of --model / --models / --provider / --precision."""
    return load_model(args.model, provider=args.provider, models_dirs=args.models or None,
                      precision=getattr(args, "precision", None))


def programs_and_names(model) -> tuple[dict, dict]:
    """track -> MIDI program, track -> name, from the model's track specs."""
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


def write_outputs(model, sequences, args, titles, midi_notes=None) -> dict:
    """Write --out (a MIDI file: `midi_notes`, else the sequences one after another) and --png (one
    panel per sequence); returns {"midi": path, "png": path} for what was written."""
    written = {}
    if args.out:
        from ..io.midi_io import write_midi
        programs, names = programs_and_names(model)
        notes = midi_notes if midi_notes is not None else _concat(model, sequences, args.gap_bars)
        write_midi(notes, args.out, tempo=args.tempo, programs=programs, names=names)
        written["midi"] = str(args.out)
    if args.png:
        from ..io.pianoroll import save_pianoroll_png
        save_pianoroll_png(sequences, args.png, titles=titles)
        written["png"] = str(args.png)
    return written


def add_output_args(p: argparse.ArgumentParser, what: str = "the sequences one after another",
                    gap: bool = True) -> None:
    """--out, --png, --tempo (and --gap-bars)."""
    p.add_argument("--out", default=None, help=f"MIDI file to write ({what})")
    p.add_argument("--png", default=None, help="piano-roll picture to write (one panel per sequence)")
    p.add_argument("--tempo", type=float, default=120.0)
    if gap:
        p.add_argument("--gap-bars", type=int, default=0, help="silent bars between sequences in the MIDI file")


def read_input(path, model) -> list[Note]:
    """The notes of a MIDI file as the model's training data sees them (bridge.io.midi_io: the melody
    instrument / drums / trio tracks, quantized), starting at the first bar that has a note."""
    from ..io.midi_io import read_notes
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
    found = list_models(search_dirs(args.models or None))
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
    add_model_args(p)
    p.add_argument("-n", type=int, default=4, help="number of sequences")
    p.add_argument("--temperature", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--palette", default=None, help="a palette file (`learn`): draw z from it instead of N(0, I)")
    p.add_argument("--spread", type=float, default=1.0,
                   help="with --palette: 0 = its mean, 1 = its fitted spread, > 1 wider")
    add_output_args(p)
    p.set_defaults(func=cmd_sample)


def cmd_sample(args) -> int:
    model = load(args)
    if args.palette:
        from ..runtime.palette import read_palette, sample_palette
        seqs = sample_palette(model, read_palette(args.palette), args.n, args.temperature, args.spread, args.seed)
    else:
        seqs = model.sample(args.n, temperature=args.temperature, seed=args.seed)
    titles = [f"{model.name} sample {i + 1} (T={args.temperature}, seed={args.seed})" for i in range(len(seqs))]
    written = write_outputs(model, seqs, args, titles)
    print(json.dumps({"model": model.name, "sequences": len(seqs), "notes": [len(s) for s in seqs], **written}))
    return 0


def add_interpolate_parser(sub) -> None:
    p = sub.add_parser("interpolate", help="morph between two MIDI clips through the latent space")
    p.add_argument("a", help="MIDI file of the start")
    p.add_argument("b", help="MIDI file of the end")
    add_model_args(p)
    p.add_argument("--steps", type=int, default=8, help="sequences including both ends")
    p.add_argument("--method", default="slerp", choices=["slerp", "lerp"])
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=None)
    add_output_args(p)
    p.set_defaults(func=cmd_interpolate)


def cmd_interpolate(args) -> int:
    model = load(args)
    a, b = read_input(args.a, model), read_input(args.b, model)
    seqs = model.interpolate(a, b, steps=args.steps, temperature=args.temperature, method=args.method,
                             seed=args.seed)
    titles = [f"{model.name} {args.method} t={i / (len(seqs) - 1):.2f}" for i in range(len(seqs))]
    written = write_outputs(model, seqs, args, titles)
    print(json.dumps({"model": model.name, "steps": len(seqs), "input_notes": [len(a), len(b)],
                      "notes": [len(s) for s in seqs], **written}))
    return 0
