"""Accompaniment: bass and drums for a melody, from a trio model's latent space (no torch).

    m = bridge.load_model("trio_16bar")                 # a trio package with surrogate_encoder.onnx
    band = m.accompany(melody_notes, temperature=0.0, seed=None)
    # band: track 0 = the input melody note for note, 1 = bass, 2 = drums (is_drum)

How (export_onnx/surrogate.py trains the graph): the package's `surrogate_encoder` graph reads the
lead track alone and predicts the latent the trio encoder would give the whole trio; the trio
decoder turns that z into lead + bass + drums; the decoded lead is thrown away and the input
melody takes its place.

Length: the melody is cut into windows of the model's length (16 bars) from beat 0; the last one is
padded with rests. All windows are decoded in one batch and their bass and drums are laid end to
end, then cut at the melody's last bar (whole bars, at least one).

Also here: the `accompany` OSC op (registered on import; the daemon imports this module through
server.OP_MODULES) and `read_melody_file` for the offline CLI (`python -m bridge accompany`).
"""
from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np

from . import ops
from .codecs import CodecError
from .engine import ModelError, _open_session, _pick_providers
from .notes import BEATS_PER_BAR, Note

ROLE = "surrogate_encoder"
MAX_BARS = 256                     # longest melody one call accompanies (16 windows of 16 bars)
_open_lock = threading.Lock()


# ---------------------------------------------------------------------------------------------- the graph
def has_surrogate(model) -> bool:
    return model.kind == "trio" and ROLE in (model.info.get("graphs") or {})


def _surrogate(model):
    """The surrogate encoder session of a trio model (opened once, kept on the model)."""
    sess = model.__dict__.get("_accompany_surrogate")
    if sess is not None:
        return sess
    if model.kind != "trio":
        raise ModelError(f"model {model.name!r} is a {model.kind} model; accompany needs a trio model")
    g = (model.info.get("graphs") or {}).get(ROLE)
    if g is None:
        raise ModelError(f"model {model.name!r} has no surrogate encoder ({ROLE}.onnx); add one with "
                           f"`python -m export_onnx train-surrogate ... --package {model.path}`")
    if not isinstance(g, dict) or not isinstance(g.get("file"), str) or g["file"] not in model.info["files"]:
        raise ModelError(f"{model.path}/model.json: graph {ROLE!r} needs a file listed in 'files'")
    track = int(g.get("track", 0))
    classes = model.num_classes[track]
    with _open_lock:
        sess = model.__dict__.get("_accompany_surrogate")
        if sess is not None:
            return sess
        sess = _open_session(model.path / g["file"], _pick_providers(model.provider), model.threads)
        ins = {i.name: i.shape for i in sess.get_inputs()}
        outs = [o.name for o in sess.get_outputs()]
        shape = ins.get("inputs")
        if list(ins) != ["inputs"] or "mu" not in outs or shape is None or len(shape) != 3 \
                or shape[1] != model.num_steps or shape[2] != classes:
            raise ModelError(f"{model.path / g['file']}: expected inputs (B, {model.num_steps}, {classes}) "
                               f"-> mu, sigma; the graph has {ins} -> {outs}")
        model._accompany_surrogate = sess
        model._accompany_track = track
    return sess


# ---------------------------------------------------------------------------------------------- input checks
def check_time_signature(time_signature) -> None:
    """None (unknown: taken as 4/4) or (4, 4); anything else is a ValueError."""
    if time_signature is None:
        return
    try:
        num, den = (int(x) for x in time_signature)
    except (TypeError, ValueError):
        raise ValueError(f"time_signature must be [numerator, denominator], got {time_signature!r}") from None
    if (num, den) != (4, 4):
        raise ValueError(f"accompany needs 4/4 music (the trio model's grid is 16 steps per 4/4 bar); "
                         f"got {num}/{den}")


def melody_of(notes) -> list[Note]:
    """The melody to accompany: the non-drum notes of track 0. Raises ValueError with the reason
    for an empty or drums-only input, or one whose pitched notes are all on other tracks."""
    notes = list(notes)
    for n in notes:
        if not isinstance(n, Note):
            raise ValueError(f"expected bridge.Note objects, got {type(n).__name__}")
        if not (math.isfinite(n.start) and math.isfinite(n.end)) or n.start < 0 or n.end <= n.start:
            raise ValueError(f"note {n} must have 0 <= start < end")
    if not notes:
        raise ValueError("empty melody: accompany needs at least one note")
    pitched = [n for n in notes if not n.is_drum]
    if not pitched:
        raise ValueError("drums-only input: accompany needs a melody (pitched, non-drum notes on track 0)")
    melody = [n for n in pitched if n.track == 0]
    if not melody:
        tracks = sorted({n.track for n in pitched})
        raise ValueError(f"no melody notes on track 0 (pitched notes are on track(s) {tracks}); "
                         f"put the melody on track 0")
    return melody


def melody_bars(melody: list[Note]) -> int:
    """Whole bars covering the melody (at least 1)."""
    end = max(n.end for n in melody)
    return max(1, int(math.ceil(end / BEATS_PER_BAR - 1e-9)))


def melody_windows(model, melody: list[Note], bars: int | None = None) -> np.ndarray:
    """(W, steps) lead tokens, one row per window of the model's length; notes belong to the window
    their start falls in and are cut at its end. Pitches outside the range move by octaves."""
    bars = bars or melody_bars(melody)
    win_beats = model.bars * BEATS_PER_BAR
    count = int(math.ceil(bars / model.bars))
    track = model.__dict__.get("_accompany_track", 0)
    codec = model.codec.tracks[track]
    rows = []
    for w in range(count):
        lo, hi = w * win_beats, (w + 1) * win_beats
        part = [Note(n.pitch, n.start - lo, min(n.end, hi) - lo, n.velocity, 0, False)
                for n in melody if lo <= n.start < hi]
        try:
            rows.append(codec.encode(part, model.num_steps, fold_octaves=True))
        except CodecError as e:
            raise ValueError(f"the melody does not fit model {model.name!r}: {e}") from None
    return np.stack(rows).astype(np.int64)


# ---------------------------------------------------------------------------------------------- accompany
def predict_z(model, lead_tokens: np.ndarray) -> np.ndarray:
    """(W, steps) lead tokens -> (W, z): the surrogate encoder's prediction of the trio latent."""
    sess = _surrogate(model)
    track = model._accompany_track
    lead = np.asarray(lead_tokens, dtype=np.int64)
    onehot = np.eye(model.num_classes[track], dtype=np.float32)[lead]
    with model._lock:
        mu = sess.run(["mu"], {"inputs": onehot})[0]
    return np.ascontiguousarray(mu, dtype=np.float32)


def accompany(model, melody_notes, temperature: float = 0.0, seed=None, time_signature=None,
              velocity: int = 100) -> list[Note]:
    """Bass and drums for a melody. Returns one note list (sorted by start, track, pitch): track 0 =
    the input melody note for note, track 1 = bass, track 2 = drums. `temperature` 0 = argmax decode,
    otherwise sampled; a `seed` makes sampling reproducible. Raises ModelError for a model that
    cannot accompany (not a trio, no surrogate encoder), ValueError for bad input (empty melody,
    drums only, not 4/4, longer than MAX_BARS bars)."""
    if model.kind != "trio":
        raise ModelError(f"model {model.name!r} is a {model.kind} model; accompany needs a trio model")
    _surrogate(model)
    check_time_signature(time_signature)
    melody = melody_of(melody_notes)
    bars = melody_bars(melody)
    if bars > MAX_BARS:
        raise ValueError(f"the melody is {bars} bars long; accompany takes at most {MAX_BARS} bars per call")
    lead = melody_windows(model, melody, bars)
    z = predict_z(model, lead)
    tokens = model.decode_tokens(z, temperature=temperature, seed=seed)        # (W, steps, 3)
    end = bars * BEATS_PER_BAR
    win_beats = model.bars * BEATS_PER_BAR
    out = [Note(n.pitch, n.start, n.end, n.velocity, 0, False) for n in melody]
    for w in range(len(tokens)):
        off = w * win_beats
        for n in model.tokens_to_notes(tokens[w], velocity=velocity)[0]:
            if n.track == 0 or n.start + off >= end - 1e-9:
                continue
            out.append(Note(n.pitch, n.start + off, min(n.end + off, end), n.velocity, n.track, n.is_drum))
    return sorted(out, key=lambda n: (n.start, n.track, n.pitch))


# ---------------------------------------------------------------------------------------------- files
def read_melody_file(path, track: str | None = None) -> list[Note]:
    """The melody of a MIDI file for accompany: the instrument named `track` (e.g. MELODY), else the
    file's melody (a track named MELODY, else the highest program 0-31 line), quantized on the
    file's beat grid and moved so that the bar holding its first note starts at beat 0.

    A POP909 file (a `beat_midi.txt` next to it) is read on its annotated beats, since its MIDI time
    signatures are placeholders; any other file must be 4/4 (else bridge.midi_io.MidiError, a
    ValueError)."""
    from . import midi_io, windows
    path = Path(path)
    beat_file = path.parent / "beat_midi.txt"
    if beat_file.is_file():
        try:
            ann = np.loadtxt(beat_file, ndmin=2)
        except (OSError, ValueError) as e:
            raise midi_io.MidiError(f"{beat_file}: unreadable beat annotation ({e})") from None
        if ann.shape[0] < 2 or ann.shape[1] < 3:
            raise midi_io.MidiError(f"{beat_file}: beat annotation too short")
        midi = midi_io.read_midi(path, beats=ann[:, 0], downbeats=ann[ann[:, 2] == 1, 0], require_4_4=False)
    else:
        midi = midi_io.read_midi(path)
    if track is not None:
        insts = [i for i in midi.instruments if i.name.strip().upper() == track.strip().upper() and i.notes]
        if not insts:
            names = ", ".join(repr(i.name) for i in midi.instruments) or "none"
            raise ValueError(f"{path}: no track named {track!r} with notes (tracks: {names})")
        inst = insts[0]
        if inst.is_drum:
            raise ValueError(f"{path}: track {track!r} is a drum track; accompany needs a melody")
    else:
        inst = windows.pick_melody(midi.instruments)
        if inst is None:
            if midi.instruments and all(i.is_drum for i in midi.instruments):
                raise ValueError(f"{path}: drums only; accompany needs a melody")
            raise ValueError(f"{path}: no melody track (a track named MELODY or a program 0-31 instrument)")
    notes = inst.notes
    first = min(int(round(n.start * 4)) for n in notes)              # steps
    starts = [d for d in midi.downbeats if d <= first]
    origin = (max(starts) if starts else (first // 16) * 16) / 4.0   # beats
    return [Note(n.pitch, n.start - origin, n.end - origin, n.velocity, 0, False) for n in notes]


# ---------------------------------------------------------------------------------------------- the OSC op
@ops.op("accompany")
def op_accompany(session, request):
    """accompany {model, notes, temperature?, seed?, time_signature?} -> one /bridge/seq with the
    trio (track 0 = the input melody, 1 = bass, 2 = drums), `bars` = the melody's bars, then done."""
    model = request.model()
    if model.kind != "trio":
        raise ops.bad(f"model {model.name!r} is a {model.kind} model; accompany needs a trio model")
    notes = request.notes(model)
    temperature = request.temperature(0.0)
    seed = request.seed()
    ts = request.fields.get("time_signature")
    try:
        band = accompany(model, notes, temperature=temperature, seed=seed, time_signature=ts)
    except (ValueError, ModelError) as e:
        raise ops.bad(str(e)) from None
    return ops.Sequences(model, [band], [{"bars": melody_bars(melody_of(notes)), "tracks": ["melody", "bass", "drums"]}])


# ---------------------------------------------------------------------------------------------- the CLI
def add_parser(sub) -> None:
    """`python -m bridge accompany melody.mid --out band.mid --png band.png [--model trio_16bar]`."""
    p = sub.add_parser("accompany", help="bass and drums for a melody (a trio model with a surrogate encoder)")
    p.add_argument("melody", help="MIDI file holding the melody")
    p.add_argument("--model", default="trio_16bar", help="trio model package name or path (default trio_16bar)")
    p.add_argument("--models", action="append", default=[], metavar="DIR",
                   help="extra directory of model packages (repeatable)")
    p.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--track", default=None, help="name of the melody track (default: MELODY, else the "
                                                 "highest program 0-31 line)")
    p.add_argument("--bars", type=int, default=None, help="accompany only the first BARS bars of the melody")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", default=None, help="three-track MIDI file to write (melody, bass, drums)")
    p.add_argument("--png", default=None, help="piano-roll picture to write")
    p.add_argument("--tempo", type=float, default=120.0)
    p.set_defaults(func=cmd_accompany)


def cmd_accompany(args) -> int:
    import json
    from .engine import load_model
    model = load_model(args.model, provider=args.provider, models_dirs=args.models or None)
    melody = read_melody_file(args.melody, args.track)
    if args.bars is not None:
        if args.bars < 1:
            raise ValueError(f"--bars must be >= 1, got {args.bars}")
        end = args.bars * BEATS_PER_BAR
        melody = [Note(n.pitch, n.start, min(n.end, end), n.velocity, n.track, n.is_drum)
                  for n in melody if n.start < end]
    band = model.accompany(melody, temperature=args.temperature, seed=args.seed)
    names = {i: t.get("name", f"track {i}") for i, t in enumerate(model.info["tracks"])}
    programs = {i: int(t.get("program", 0)) for i, t in enumerate(model.info["tracks"])}
    written = {}
    if args.out:
        from .midi_io import write_midi
        write_midi(band, args.out, tempo=args.tempo, programs=programs, names=names)
        written["midi"] = str(args.out)
    if args.png:
        from .pianoroll import save_pianoroll_png
        save_pianoroll_png([band], args.png, titles=[f"{Path(args.melody).name} + {model.name} accompaniment "
                                                     f"(T={args.temperature})"])
        written["png"] = str(args.png)
    count = {names[k]: sum(1 for n in band if n.track == k) for k in names}
    print(json.dumps({"model": model.name, "bars": melody_bars(melody), "notes": count, **written}))
    return 0
