"""`python -m bridge accompany melody.mid --out band.mid --png band.png [--model trio_16bar]`: bass and
drums for the melody of a MIDI file (a trio model with a surrogate encoder; bridge.runtime.accompany).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..core.notes import BEATS_PER_BAR, Note
from ..io.midi_io import read_melody_file
from ..runtime.accompany import melody_bars
from .commands import add_model_args, add_output_args, load, programs_and_names, write_outputs


def add_parser(sub) -> None:
    p = sub.add_parser("accompany", help="bass and drums for a melody (a trio model with a surrogate encoder)")
    p.add_argument("melody", help="MIDI file holding the melody")
    add_model_args(p, default="trio_16bar")
    p.add_argument("--track", default=None, help="name of the melody track (default: MELODY, else the "
                                                 "highest program 0-31 line)")
    p.add_argument("--bars", type=int, default=None, help="accompany only the first BARS bars of the melody")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=None)
    add_output_args(p, what="three tracks: melody, bass, drums", gap=False)
    p.set_defaults(func=cmd_accompany)


def cmd_accompany(args) -> int:
    model = load(args)
    melody = read_melody_file(args.melody, args.track)
    if args.bars is not None:
        if args.bars < 1:
            raise ValueError(f"--bars must be >= 1, got {args.bars}")
        end = args.bars * BEATS_PER_BAR
        melody = [Note(n.pitch, n.start, min(n.end, end), n.velocity, n.track, n.is_drum)
                  for n in melody if n.start < end]
    band = model.accompany(melody, temperature=args.temperature, seed=args.seed)
    title = f"{Path(args.melody).name} + {model.name} accompaniment (T={args.temperature})"
    written = write_outputs(model, [band], args, [title], midi_notes=band)
    names = programs_and_names(model)[1]
    count = {names[k]: sum(1 for n in band if n.track == k) for k in names}
    print(json.dumps({"model": model.name, "bars": melody_bars(melody), "notes": count, **written}))
    return 0
