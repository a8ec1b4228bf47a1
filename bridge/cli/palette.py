"""`python -m bridge learn`: a palette from the player's own clips (bridge.core.palette).

    python -m bridge learn clips/*.mid --model mel_2bar --out mine.palette.json
    python -m bridge sample --model mel_2bar --palette mine.palette.json --spread 1.0 -n 4 --out mine.mid
"""
from __future__ import annotations

import json
from pathlib import Path

from ..core.notes import BEATS_PER_BAR, Note
from ..runtime.palette import learn_palette
from .commands import add_model_args, load


def read_clip(path, model) -> list[Note]:
    """All the notes of a MIDI file as the model's data sees them, from the first bar with a note.

    Raises:
        MidiError: unreadable, empty or not 4/4.
    """
    from ..io.midi_io import read_notes
    notes = read_notes(path, model.kind)
    if not notes:
        return []
    first_bar = int(min(n.start for n in notes) // BEATS_PER_BAR) * BEATS_PER_BAR
    return [Note(n.pitch, n.start - first_bar, n.end - first_bar, n.velocity, n.track, n.is_drum) for n in notes]


def add_parser(sub) -> None:
    p = sub.add_parser("learn", help="learn a palette (your style in the model's latent space) from >= 3 clips")
    p.add_argument("clips", nargs="+", help="MIDI files (4/4), one clip each")
    add_model_args(p)
    p.add_argument("--name", default=None, help="palette name (default: the --out file's stem)")
    p.add_argument("--out", required=True, help="palette file to write (JSON)")
    p.set_defaults(func=cmd_learn)


def cmd_learn(args) -> int:
    model = load(args)
    clips = [read_clip(c, model) for c in args.clips]
    name = args.name or Path(args.out).name.split(".")[0]
    palette = learn_palette(model, clips, name)
    Path(args.out).write_text(palette.to_json())
    print(json.dumps({"palette": name, "model": model.name, "clips": len(clips), "windows": palette.windows,
                      "directions": len(palette.scales), "fit_ms": palette.info.get("fit_ms"),
                      "encode_ms": palette.info.get("encode_ms"), "out": str(args.out)}))
    return 0
