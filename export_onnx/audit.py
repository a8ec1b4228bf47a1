"""`python -m export_onnx audit bridge/models/<name>`: a musical audit of a shipped model package.

Measures what a musician gets from the package, through the runtime's public API only
(`bridge.load_model`, `Model.encode_tokens`, `Model.decode_tokens`, `Model.sample_z`,
`Model.accompany`, `bridge.codecs`), on the model's own held-out test split:

- held-out windows: the test split rebuilt straight from the MIDI with the dataset code
  (export_onnx.dataset: same sources, same song-level split, same window rules and per-split dedupe,
  only the test split's files read), cached in `data/audit/<config>/test.npz`; the audit takes a
  seeded subset (`--windows`, default 512 for 2 bars, 256 for longer models). Sources: the labels
  in the package card's "## Data" section (what the model was trained on), else DEFAULT_SOURCES;
  `--midi-dir` overrides both.
- reconstruction: argmax decode (temperature 0) from the posterior mean, per track, next to three
  trivial baselines on the same windows;
- dependence on z: distinct outputs over `--z-inputs` (100) inputs, agreement with decode(z = 0);
- prior samples: `--samples` (1,024 for 2-bar models, 256 for 16-bar ones: a share over 256 2-bar
  samples has a standard error of ~0.02, as wide as the margins the targets are judged by; add-int8
  uses the same defaults) z ~ N(0, I) (or the package's fitted prior: `prior_components`)
  decoded at `--temperature` (0.5), exactly as `Model.sample(n, temperature, seed)` does, next to the
  same statistics on the real windows;
- accompaniment (trio packages with a surrogate encoder): `Model.accompany` on 16-bar MELODY
  segments of POP909 test-split songs (one per song, the middle valid window), scored against the
  songs' chord annotations (chord_midi.txt on beat_midi.txt's grid).

Writes (unless `--no-write`) `audit.json` into the package and a "## Musical audit" section into its
MODEL_CARD.md (model.json's sha256 of the card is updated, as `model-card --package` does; audit.json
itself is not listed in model.json's `files`, so auditing never changes what the runtime verifies).

audit.json schema: ONE FLAT JSON OBJECT (no nesting), every value a number, a string, a boolean,
null (not measurable: e.g. no notes at all) or, for `targets_failed` only, a list of key names.
Shares are fractions in [0, 1] (never percent). `<t>` is a track name from model.json (`melody`,
`drums`, or the trio's `lead`, `bass`, `drums`).

  identity: format ("latent-bridge-audit"), audit_version, package (dir name), config, kind, bars,
    date (UTC ISO 8601), model_json_sha256 (sha256 of model.json as left by the audit),
    graphs_sha256 (sha256 over the sorted "file sha256" lines of the package's .onnx files but
    decoder_step.int8.onnx and encoder.int8.onnx: the weights' identity, unchanged by card edits and
    by add-int8), provider, precision and encoder_precision (the decoder step and encoder the runtime
    chose: fp32, or int8 where the package's int8 graph passed its gate), wall_time_s
  data: sources (comma-separated labels), test_windows / test_songs (the whole rebuilt test split),
    test_windows_expected (windows_in_split recorded by `evaluate`, when the package has it),
    n_windows / n_songs (the audited subset), window_seed
  reconstruction (argmax from the posterior mean, per 16th step):
    <t>_recon_acc; recon_acc (mean over tracks)
    <t>_baseline_never_play (all 'no event' tokens), <t>_baseline_hold_first (melody tracks: the
      first onset, then hold; null for drums), <t>_baseline_loop_bar1 (the input's bar 1 repeated),
    <t>_best_baseline, <t>_best_baseline_name, <t>_recon_minus_best_baseline,
      <t>_recon_minus_never_play; recon_minus_best_baseline (the weakest track's margin)
    melody tracks: <t>_recon_onset_pitch (share of input note-onsets whose step holds the same
      note-on in the reconstruction); drum tracks: <t>_recon_hit_precision, _hit_recall, _hit_f1
      (hits = (step, drum class) pairs)
    <t>_recon_nonempty (share of reconstructions with at least one onset/hit; real_<t>_nonempty for
      the inputs)
  dependence on z (the first z_inputs windows of the seeded subset; z_input_songs songs):
    z_distinct_outputs / z_distinct_share (whole decoded sequences; count, count / z_inputs),
    <t>_z_distinct_outputs / <t>_z_distinct_share (the same per track), real_<t>_distinct (distinct inputs),
    <t>_z0_agreement (token agreement of decode(mu) with decode(z = 0)), z0_agreement (mean),
    real_<t>_z0_agreement (the inputs' agreement with decode(z = 0))
  prior samples (sample_*: n_samples z ~ N(0, I), sample_seed, sample_temperature) and the same on the
  audited real windows (real_*):
    melody tracks: <p>_<t>_notes_per_bar (onsets per bar), <p>_<t>_empty_bars (share of bars in which
      no note sounds at any step), <p>_<t>_range_mean (max - min onset pitch per sequence, mean over
      sequences with a note, semitones), <p>_<t>_in_key (share of onsets in the sequence's key:
      Krumhansl-Kessler profiles correlated with the pitch-class durations, 24 keys, major or natural
      minor scale), <p>_<t>_leaps (share of consecutive-onset intervals > 12 semitones)
    drum tracks: <p>_<t>_hits_per_bar (a hit = one drum class on at a step), <p>_<t>_walls (share of
      sequences with > 40 hits per bar), <p>_<t>_kick_on_one (share of bars with a kick at the bar's
      step 0), <p>_<t>_backbeat (share of bars with a snare at steps 4 and 12), <p>_<t>_empty_bars
  accompaniment (trio + surrogate_encoder.onnx; keys absent otherwise, accomp_skipped says why):
    accomp_segments, accomp_songs, accomp_bass_chord_tone (per 16th step where the bass sounds and a
    chord is annotated: share whose pitch class is in the chord), accomp_bass_chord_tone_random
    (expected share of uniformly random pitch classes on the same steps), accomp_bass_chord_tone_real
    (the same for the lowest sounding note of POP909's PIANO track: a real reference; over
    accomp_real_steps steps), accomp_bass_steps (steps scored), accomp_bass_sounding (share of all
    steps with bass), accomp_transpose_semitones (5), accomp_bass_changed_transpose5 (the melody moved
    up 5 semitones and accompanied again: among steps where either version has bass, the share whose
    sounding bass pitch, or silence, differs), accomp_bass_follows_transpose5 (among steps where both
    have bass, the share whose pitch class moved by exactly +5), accomp_drum_patterns_distinct
    (distinct 16-bar drum token sequences over the segments), accomp_drum_bar_patterns_distinct
    (distinct one-bar drum patterns over all the segments' bars)
  targets (TARGETS below, the team's shipping numbers): targets_checked, targets_failed (key names)

Target -> key: recon >= x: recon_acc; "recon >= best trivial baseline + 0.10":
recon_minus_best_baseline; onsets right pitch: melody_recon_onset_pitch; leaps / in key / mean range
/ empty bars: sample_<t>_leaps / _in_key / _range_mean / _empty_bars; drums walls / kick on beat 1 /
hits per bar: sample_drums_walls / _kick_on_one / _hits_per_bar; trio lead non-empty:
lead_recon_nonempty; every track >= never-play + 0.05: <t>_recon_minus_never_play; distinct drum
outputs over 100 inputs: drums_z_distinct_outputs (with z_inputs); accompaniment: accomp_*.
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bridge.core import codecs as codecs_module
from bridge.core import windows as windows_module
from bridge.io import midi_io as midi_io_module
from bridge.runtime import engine as engine_module
from bridge.runtime import package as package_module

from bridge.core.codecs import SequenceCodec

ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = ROOT.parent / "shared" / "data"
CACHE_DIR = ROOT / "data" / "audit"
from .model_card import AUDIT_HEADING  # noqa: E402  (one heading, kept by refresh_package_card)
AUDIT_VERSION = 1

# data sources per config when the package card does not name them (export_onnx.dataset labels)
DEFAULT_SOURCES = {"mel_2bar": ["pop909", "nottingham"], "mel_16bar": ["pop909", "nottingham"],
                   "mel_16bar_flat": ["pop909", "nottingham"], "drums_2bar": ["groove"],
                   "trio_16bar": ["lmd_beatles"], "trio_16bar_flat": ["lmd_beatles"]}

# the team's shipping numbers: key -> (">=" | "<=" | "between", value or (lo, hi))
TARGETS = {
    "mel_2bar": {"recon_acc": (">=", 0.92), "sample_melody_leaps": ("<=", 0.03),
                 "sample_melody_in_key": (">=", 0.90), "sample_melody_range_mean": ("<=", 15.0)},
    "drums_2bar": {"recon_acc": (">=", 0.85), "sample_drums_walls": ("<=", 0.02),
                   "sample_drums_kick_on_one": (">=", 0.75), "sample_drums_hits_per_bar": ("between", (10.0, 26.0))},
    "mel_16bar": {"recon_minus_best_baseline": (">=", 0.10), "melody_recon_onset_pitch": (">=", 0.40),
                  "sample_melody_empty_bars": ("<=", 0.08), "sample_melody_leaps": ("<=", 0.03)},
    "trio_16bar": {"lead_recon_nonempty": (">=", 0.90), "lead_recon_minus_never_play": (">=", 0.05),
                   "bass_recon_minus_never_play": (">=", 0.05), "drums_recon_minus_never_play": (">=", 0.05),
                   "drums_z_distinct_outputs": (">=", 50), "accomp_bass_chord_tone": (">=", 0.45),
                   "accomp_bass_changed_transpose5": (">=", 0.50), "accomp_drum_patterns_distinct": (">=", 5)},
}

# Krumhansl-Kessler key profiles (C major / C minor), index = pitch class
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)       # natural minor
LEAP_SEMITONES = 12
WALL_HITS_PER_BAR = 40
KICK, SNARE = 0, 1                        # bits of bridge.codecs.DRUM_CLASSES
N_DRUM_CLASSES = 9
MELODY_FIRST_PITCH = 2                    # melody tokens: 0 no event, 1 note-off, 2.. note-on (bridge.codecs)

def _log(msg: str) -> None:
    print(f"[audit] {msg}", file=sys.stderr, flush=True)


def _f(x):
    """A plain float for JSON (None stays None)."""
    return None if x is None else float(x)


# ============================================================================ token helpers (pure)
def sounding(tokens) -> np.ndarray:
    """Melody tokens (..., steps) -> the note-on token sounding at each step, -1 where silent."""
    tok = np.asarray(tokens, dtype=np.int64)
    steps = tok.shape[-1]
    idx = np.where(tok != 0, np.arange(steps), -1)
    last = np.maximum.accumulate(idx, axis=-1)
    held = np.take_along_axis(tok, np.maximum(last, 0), axis=-1)
    return np.where((last >= 0) & (held >= MELODY_FIRST_PITCH), held, -1)


def melody_notes(column) -> list[tuple[int, int, int]]:
    """One melody token column -> [(start step, end step, note-on token)] in order."""
    col = np.asarray(column, dtype=np.int64)
    events = np.flatnonzero(col != 0).tolist() + [len(col)]
    return [(s, events[k + 1], int(col[s])) for k, s in enumerate(events[:-1]) if col[s] >= MELODY_FIRST_PITCH]


def _bars(tokens, steps_per_bar: int) -> np.ndarray:
    tok = np.asarray(tokens)
    n, steps = tok.shape
    if steps % steps_per_bar:
        raise ValueError(f"{steps} steps are not whole bars of {steps_per_bar}")
    return tok.reshape(n, steps // steps_per_bar, steps_per_bar)


# ---- reconstruction and baselines ----------------------------------------------------------------
def token_accuracy(pred, truth) -> float:
    """Share of steps where the two token arrays agree."""
    return float(np.mean(np.asarray(pred) == np.asarray(truth)))


def never_play(truth) -> np.ndarray:
    """The all 'no event' baseline (melody: token 0; drums: no hit)."""
    return np.zeros_like(np.asarray(truth))


def hold_first(truth) -> np.ndarray:
    """Melody baseline: the input's first note-on at its step, then hold it to the end."""
    truth = np.asarray(truth)
    out = np.zeros_like(truth)
    on = truth >= MELODY_FIRST_PITCH
    rows = np.flatnonzero(on.any(axis=1))
    first = on.argmax(axis=1)[rows]
    out[rows, first] = truth[rows, first]
    return out


def loop_bar1(truth, steps_per_bar: int) -> np.ndarray:
    """Baseline: the input's first bar repeated over every bar."""
    bars = _bars(truth, steps_per_bar)
    return np.repeat(bars[:, :1], bars.shape[1], axis=1).reshape(np.asarray(truth).shape)


def onset_pitch_recall(pred, truth) -> float | None:
    """Share of the input's note-onsets whose step holds the same note-on in `pred` (None: no onsets)."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    on = truth >= MELODY_FIRST_PITCH
    return float(np.mean(pred[on] == truth[on])) if on.any() else None


def drum_hits(tokens) -> np.ndarray:
    """Drum tokens (...) -> bool (..., 9): which classes are struck."""
    return (np.asarray(tokens, dtype=np.int64)[..., None] >> np.arange(N_DRUM_CLASSES)) & 1 == 1


def hit_scores(pred, truth) -> tuple[float | None, float | None, float | None]:
    """(precision, recall, F1) of hits = (step, drum class) pairs; None where undefined."""
    p, t = drum_hits(pred), drum_hits(truth)
    tp = float(np.sum(p & t))
    precision = tp / p.sum() if p.sum() else None
    recall = tp / t.sum() if t.sum() else None
    f1 = 2 * tp / (p.sum() + t.sum()) if p.sum() + t.sum() else None
    return _f(precision), _f(recall), _f(f1)


def nonempty_share(tokens, kind: str) -> float:
    """Share of sequences with at least one note-on (melody) or hit (drums)."""
    tok = np.asarray(tokens)
    has = (tok >= MELODY_FIRST_PITCH) if kind == "melody" else (tok != 0)
    return float(np.mean(has.any(axis=1)))


def distinct_count(tokens) -> int:
    """Number of distinct sequences (rows; any trailing dimensions belong to the row)."""
    tok = np.ascontiguousarray(np.asarray(tokens, dtype=np.int64))
    return len({row.tobytes() for row in tok})


# ---- melody statistics ---------------------------------------------------------------------------
def notes_per_bar(tokens, steps_per_bar: int = 16) -> float:
    bars = _bars(tokens, steps_per_bar)
    return float(np.sum(bars >= MELODY_FIRST_PITCH) / (bars.shape[0] * bars.shape[1]))


def melody_empty_bars(tokens, steps_per_bar: int = 16) -> float:
    """Share of bars in which no note sounds at any step (a held note counts as sounding)."""
    silent = _bars(sounding(tokens), steps_per_bar) < 0
    return float(np.mean(silent.all(axis=2)))


def pitch_range_mean(tokens) -> float | None:
    """Mean over sequences with a note of (highest - lowest note-on), semitones; None: no notes."""
    ranges = [int(on.max() - on.min()) for on in (row[row >= MELODY_FIRST_PITCH] for row in np.asarray(tokens))
              if on.size]
    return float(np.mean(ranges)) if ranges else None


def leap_share(tokens, limit: int = LEAP_SEMITONES) -> float | None:
    """Share of intervals between consecutive note-ons (within a sequence) larger than `limit`."""
    leaps = total = 0
    for row in np.asarray(tokens, dtype=np.int64):
        d = np.abs(np.diff(row[row >= MELODY_FIRST_PITCH]))
        leaps += int(np.sum(d > limit))
        total += d.size
    return leaps / total if total else None


def estimate_key(pc_weights) -> tuple[int, str] | None:
    """Krumhansl-Kessler: (tonic pitch class, "major" | "minor") whose profile correlates best with
    the 12 pitch-class weights (durations); None for all-zero weights. Ties: major first, lower tonic."""
    w = np.asarray(pc_weights, dtype=np.float64)
    if w.shape != (12,):
        raise ValueError(f"expected 12 pitch-class weights, got shape {w.shape}")
    if not w.any():
        return None
    best, best_r = None, -np.inf
    wc = w - w.mean()
    for mode, profile in (("major", KK_MAJOR), ("minor", KK_MINOR)):
        for tonic in range(12):
            p = np.roll(profile, tonic)          # p[pc] = profile[(pc - tonic) % 12]
            pc = p - p.mean()
            denom = np.sqrt((wc ** 2).sum() * (pc ** 2).sum())
            r = (wc * pc).sum() / denom if denom > 0 else 0.0
            if r > best_r + 1e-12:
                best, best_r = (tonic, mode), r
    return best


def scale_of(key: tuple[int, str]) -> frozenset:
    tonic, mode = key
    return frozenset((tonic + i) % 12 for i in (MAJOR_SCALE if mode == "major" else MINOR_SCALE))


def in_key_share(tokens, min_pitch: int = 21) -> float | None:
    """Share of note-ons in the key of their own sequence (key from that sequence's pitch-class
    durations), pooled over all sequences; None: no notes."""
    inside = total = 0
    for row in np.asarray(tokens, dtype=np.int64):
        notes = melody_notes(row)
        if not notes:
            continue
        pcs = np.array([(tok - MELODY_FIRST_PITCH + min_pitch) % 12 for _, _, tok in notes])
        dur = np.array([e - s for s, e, _ in notes], dtype=np.float64)
        key = estimate_key(np.bincount(pcs, weights=dur, minlength=12))
        scale = scale_of(key)
        inside += sum(1 for pc in pcs.tolist() if pc in scale)
        total += len(pcs)
    return inside / total if total else None


# ---- drum statistics -----------------------------------------------------------------------------
def hits_per_bar(tokens, steps_per_bar: int = 16) -> float:
    bars = _bars(tokens, steps_per_bar)
    return float(drum_hits(bars).sum() / (bars.shape[0] * bars.shape[1]))


def wall_share(tokens, steps_per_bar: int = 16, limit: int = WALL_HITS_PER_BAR) -> float:
    """Share of sequences with more than `limit` hits per bar on average."""
    bars = _bars(tokens, steps_per_bar)
    per_seq = drum_hits(bars).sum(axis=(1, 2, 3)) / bars.shape[1]
    return float(np.mean(per_seq > limit))


def kick_on_one(tokens, steps_per_bar: int = 16) -> float:
    """Share of bars with a kick at the bar's first step."""
    bars = _bars(tokens, steps_per_bar).astype(np.int64)
    return float(np.mean((bars[:, :, 0] >> KICK) & 1))


def backbeat(tokens, steps_per_bar: int = 16) -> float:
    """Share of bars with a snare on beats 2 and 4 (steps 4 and 12 of the bar)."""
    bars = _bars(tokens, steps_per_bar).astype(np.int64)
    beat = steps_per_bar // 4
    return float(np.mean(((bars[:, :, beat] >> SNARE) & 1) & ((bars[:, :, 3 * beat] >> SNARE) & 1)))


def drum_empty_bars(tokens, steps_per_bar: int = 16) -> float:
    return float(np.mean((_bars(tokens, steps_per_bar) == 0).all(axis=2)))


def track_stats(tokens, kind: str, steps_per_bar: int = 16, min_pitch: int = 21) -> dict:
    """The sample statistics of one track (N, steps), keyed without prefix."""
    if kind == "drums":
        return {"hits_per_bar": hits_per_bar(tokens, steps_per_bar), "walls": wall_share(tokens, steps_per_bar),
                "kick_on_one": kick_on_one(tokens, steps_per_bar), "backbeat": backbeat(tokens, steps_per_bar),
                "empty_bars": drum_empty_bars(tokens, steps_per_bar)}
    return {"notes_per_bar": notes_per_bar(tokens, steps_per_bar),
            "empty_bars": melody_empty_bars(tokens, steps_per_bar),
            "range_mean": pitch_range_mean(tokens), "in_key": in_key_share(tokens, min_pitch),
            "leaps": leap_share(tokens)}


# ---- chords --------------------------------------------------------------------------------------
_LETTER = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_QUALITY = {"maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8), "sus2": (0, 2, 7),
            "sus4": (0, 5, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10),
            "minmaj7": (0, 3, 7, 11), "dim7": (0, 3, 6, 9), "hdim7": (0, 3, 6, 10), "maj6": (0, 4, 7, 9),
            "min6": (0, 3, 7, 9), "9": (0, 4, 7, 10, 2), "maj9": (0, 4, 7, 11, 2), "min9": (0, 3, 7, 10, 2),
            "5": (0, 7), "1": (0,)}
_DEGREE = {1: 0, 2: 2, 3: 4, 4: 5, 5: 7, 6: 9, 7: 11, 9: 2, 11: 5, 13: 9}


def _degree(text: str) -> int:
    """A Harte scale degree ("3", "b7", "#11") -> semitones above the root (mod 12)."""
    m = re.fullmatch(r"([b#]*)(\d+)", text.strip())
    if not m or int(m.group(2)) not in _DEGREE:
        raise ValueError(f"bad chord degree {text!r}")
    return (_DEGREE[int(m.group(2))] + m.group(1).count("#") - m.group(1).count("b")) % 12


def parse_chord(label: str) -> frozenset | None:
    """A Harte chord label as in POP909's chord_midi.txt ("C:maj7", "A:min/b3", "Bb:sus4(b7)", "N")
    -> its pitch classes (the bass degree of an inversion included); None for no chord (N, X).
    Raises ValueError for a label it cannot read."""
    label = label.strip()
    if label in ("N", "X", ""):
        return None
    root, colon, rest = label.partition(":")
    m = re.fullmatch(r"([A-Ga-g])([b#]*)", root)
    if not m:
        raise ValueError(f"bad chord root in {label!r}")
    tonic = (_LETTER[m.group(1).upper()] + m.group(2).count("#") - m.group(2).count("b")) % 12
    rest = rest if colon else "maj"
    rest, _, bass = rest.partition("/")
    quality, paren, extras = rest.partition("(")
    if paren and not extras.endswith(")"):
        raise ValueError(f"unclosed parenthesis in chord {label!r}")
    if quality == "":
        base = (0,) if paren else _QUALITY["maj"]
    elif quality in _QUALITY:
        base = _QUALITY[quality]
    else:
        raise ValueError(f"unknown chord quality {quality!r} in {label!r}")
    intervals = set(base)
    for e in filter(None, (x.strip() for x in extras[:-1].split(","))) if paren else ():
        if e.startswith("*"):
            intervals.discard(_degree(e[1:]))
        else:
            intervals.add(_degree(e))
    if bass:
        intervals.add(_degree(bass))
    return frozenset((tonic + i) % 12 for i in intervals)


def read_chords(path) -> list[tuple[float, float, frozenset | None]]:
    """chord_midi.txt -> [(start s, end s, pitch classes or None)]."""
    out = []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3:
            out.append((float(parts[0]), float(parts[1]), parse_chord(parts[2])))
    return out


def chords_at(chords, times) -> list:
    """The chord (pitch classes, or None) sounding at each time (seconds): start <= t < end."""
    starts = np.array([c[0] for c in chords])
    out = []
    for t in np.asarray(times, dtype=np.float64).tolist():
        k = int(np.searchsorted(starts, t, side="right")) - 1
        out.append(chords[k][2] if k >= 0 and t < chords[k][1] else None)
    return out


def chord_tone_share(pitches, chords) -> tuple[float | None, float | None, int]:
    """Over steps where `pitches` (MIDI pitch per step, -1 silent) sounds and a chord is annotated:
    (share of pitch classes in the chord, expected share for uniformly random pitch classes, steps)."""
    hits, chance, n = 0, 0.0, 0
    for p, c in zip(np.asarray(pitches).tolist(), chords):
        if p < 0 or not c:
            continue
        n += 1
        hits += (p % 12) in c
        chance += len(c) / 12
    return (hits / n, chance / n, n) if n else (None, None, 0)


def changed_share(a, b) -> float | None:
    """Share of steps, among those where a or b sounds (>= 0), where the two differ."""
    a, b = np.asarray(a), np.asarray(b)
    live = (a >= 0) | (b >= 0)
    return float(np.mean(a[live] != b[live])) if live.any() else None


def follows_share(a, b, semitones: int = 5) -> float | None:
    """Share of steps where both sound in which b's pitch class is a's moved by `semitones`."""
    a, b = np.asarray(a), np.asarray(b)
    both = (a >= 0) & (b >= 0)
    return float(np.mean((a[both] + semitones) % 12 == b[both] % 12)) if both.any() else None


# ============================================================================ held-out data
def card_sources(card_text: str) -> list[str]:
    """Source labels listed in a model card's "## Data" section ("- `pop909`: ...")."""
    from .model_card import card_section
    section = card_section(card_text, "## Data") or ""
    return re.findall(r"^- `([^`]+)`:", section, flags=re.MULTILINE)


def package_sources(package_dir, config: str) -> list[str]:
    card = Path(package_dir) / "MODEL_CARD.md"
    labels = card_sources(card.read_text()) if card.is_file() else []
    return labels or list(DEFAULT_SOURCES.get(config, []))


def _code_key() -> str:
    """Hash of the code that shapes windows: a cache built by other code is rebuilt."""
    from . import dataset
    h = hashlib.sha256()
    for mod in (dataset, windows_module, midi_io_module, codecs_module):
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()[:16]


def build_test_windows(config: str, midi_dirs: list, limit: int | None = None) -> dict:
    """The test split of `config` over `midi_dirs`, built as `export_onnx dataset` builds it (same
    jobs, splits, window rules and per-split dedupe in the same order), reading only test files.
    `limit`: as `dataset --limit` (that many files per folder, spread evenly; for tests)."""
    from . import dataset
    windows = windows_module
    seen: set = set()
    tokens, song, start_bar, songs, song_index = [], [], [], [], {}
    files = read = 0
    skipped: dict = {}
    for d in midi_dirs:
        _, jobs = dataset.list_jobs(d)
        for job in (j for j in dataset.spread(jobs, limit) if j.split == "test"):
            files += 1
            res = dataset.process_file((job, config))
            if not res["ok"]:
                skipped[res["reason"]] = skipped.get(res["reason"], 0) + 1
                continue
            read += 1
            tok, idx = windows.unique_windows(res["tokens"], seen)
            if not len(idx):
                continue
            if job.song_id not in song_index:
                song_index[job.song_id] = len(songs)
                songs.append(job.song_id)
            tokens.append(tok)
            song.append(np.full(len(idx), song_index[job.song_id], np.int32))
            start_bar.append(res["start_bar"][idx].astype(np.int32))
    if not tokens:
        raise RuntimeError(f"no test windows for {config} in {', '.join(map(str, midi_dirs))}")
    return {"tokens": np.concatenate(tokens), "song": np.concatenate(song), "start_bar": np.concatenate(start_bar),
            "songs": songs, "files": files, "files_read": read, "skipped": skipped}


def load_test_windows(config: str, midi_dirs: list, cache_dir=CACHE_DIR, rebuild: bool = False) -> dict:
    """build_test_windows, cached in `<cache_dir>/<config>/test.npz` (rebuilt when the sources or the
    window code change)."""
    path = Path(cache_dir) / config / "test.npz"
    key = json.dumps({"config": config, "sources": [str(Path(d).resolve()) for d in midi_dirs], "code": _code_key()})
    if path.is_file() and not rebuild:
        with np.load(path) as z:
            if "key" in z.files and str(z["key"]) == key:
                return {"tokens": z["tokens"], "song": z["song"], "start_bar": z["start_bar"],
                        "songs": [str(s) for s in z["songs"]], "files": int(z["files"]),
                        "files_read": int(z["files_read"]), "cached": True}
    t0 = time.time()
    data = build_test_windows(config, midi_dirs)
    _log(f"built {len(data['tokens'])} test windows of {config} from {data['files_read']}/{data['files']} "
         f"files in {time.time() - t0:.1f}s")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("test.tmp.npz")
    np.savez_compressed(tmp, tokens=data["tokens"], song=data["song"], start_bar=data["start_bar"],
                        songs=np.array(data["songs"], dtype=str), files=data["files"],
                        files_read=data["files_read"], key=np.array(key))
    tmp.replace(path)
    return {**data, "cached": False}


def seeded_subset(n_total: int, n: int | None, seed: int) -> np.ndarray:
    """`n` distinct indices of range(n_total) in a seeded random order (all of them if n >= n_total)."""
    rng = np.random.default_rng(seed)
    if n is None or n >= n_total:
        return rng.permutation(n_total)
    return rng.choice(n_total, n, replace=False)


# ---- POP909 melody segments for accompaniment ----------------------------------------------------
def step_seconds(beats, steps) -> np.ndarray:
    """Seconds of (fractional) 16th steps on an annotated beat grid, as bridge.midi_io.BeatGrid counts
    them (a grid starting after 0 s is extended backwards; past its end the last beat length goes on)."""
    b = midi_io_module.BeatGrid(beats).beats
    pos = np.asarray(steps, dtype=np.float64) / 4.0
    t = np.interp(pos, np.arange(len(b)), b)
    after = pos > len(b) - 1
    t[after] = b[-1] + (pos[after] - (len(b) - 1)) * (b[-1] - b[-2])
    return t


def lowest_sounding(notes, start: int, steps: int) -> np.ndarray:
    """MIDI pitch of the lowest note sounding at each of `steps` steps from `start` (-1: none);
    notes in beats (4 steps per beat)."""
    low = np.full(steps, 10 ** 6, dtype=np.int64)
    for n in notes:
        s, e = int(round(n.start * 4)) - start, int(round(n.end * 4)) - start
        s, e = max(s, 0), min(e, steps)
        if s < e:
            low[s:e] = np.minimum(low[s:e], n.pitch)
    return np.where(low == 10 ** 6, -1, low)


def pop909_segments(pop_dir, codec, bars: int, count: int) -> list[dict]:
    """One `bars`-bar MELODY window (the middle valid one) from each of the first `count` POP909
    test-split songs that have one, with its chord per step and the PIANO track's lowest note."""
    from . import dataset
    windows = windows_module
    _, jobs = dataset.list_jobs(pop_dir)
    seq_codec = SequenceCodec([codec])
    out = []
    for job in (j for j in jobs if j.split == "test"):
        if len(out) >= count:
            break
        song_dir = Path(job.path).parent
        if not (song_dir / "chord_midi.txt").is_file():
            continue
        try:
            midi = dataset.read_job(job)
        except ValueError:
            continue
        melody = [i for i in midi.instruments if i.name.strip().upper() == "MELODY" and i.notes]
        if not melody:
            continue
        tok, start_bar = windows.extract_windows([melody[0].notes], seq_codec, bars, midi.downbeats, midi.num_steps)
        if not len(tok):
            continue
        k = np.argsort(start_bar, kind="stable")[len(start_bar) // 2]
        start = int(sorted(set(midi.downbeats))[start_bar[k]])
        steps = bars * 16
        beats = np.loadtxt(song_dir / "beat_midi.txt", ndmin=2)[:, 0]
        times = step_seconds(beats, start + np.arange(steps) + 0.5)      # the middle of each step
        piano = [n for i in midi.instruments if i.name.strip().upper() == "PIANO" for n in i.notes]
        out.append({"song": job.song_id, "start_step": start, "lead": tok[k, :, 0].astype(np.int64),
                    "chords": chords_at(read_chords(song_dir / "chord_midi.txt"), times),
                    "piano_low": lowest_sounding(piano, start, steps)})
    return out


# ============================================================================ the audit
def _sample_tokens(model, n: int, temperature: float, seed: int) -> np.ndarray:
    """Exactly what `Model.sample(n, temperature, seed)` decodes, as tokens (by the package's
    sampler when it ships one: `Model.prior_model`)."""
    prior = model.prior_model
    rng = np.random.default_rng(seed)
    return prior.decode_tokens(prior.sample_z(n, rng), temperature, rng)


def audit_reconstruction(model, tokens: np.ndarray, z_inputs: int = 100) -> dict:
    """Reconstruction, baselines and dependence on z for (N, steps, tracks) held-out tokens."""
    tokens = np.asarray(tokens, dtype=np.int64)
    names = [t.get("name", f"track{i}") for i, t in enumerate(model.info["tracks"])]
    kinds = [tc.kind for tc in model.codec.tracks]
    spb = model.steps_per_bar
    mu = np.asarray(model.encode_tokens(tokens))
    rec = model.decode_tokens(mu, 0.0)
    zero = model.decode_tokens(np.zeros((1, model.z_size), np.float32), 0.0)[0]
    nz = min(z_inputs, len(tokens))
    out: dict = {"z_inputs": nz, "z_distinct_outputs": distinct_count(rec[:nz]),
                 "z_distinct_share": distinct_count(rec[:nz]) / nz if nz else None}
    margins, accs, z0 = [], [], []
    for k, (name, kind) in enumerate(zip(names, kinds)):
        truth, pred = tokens[..., k], rec[..., k]
        acc = token_accuracy(pred, truth)
        base = {"never_play": token_accuracy(never_play(truth), truth),
                "hold_first": token_accuracy(hold_first(truth), truth) if kind == "melody" else None,
                "loop_bar1": token_accuracy(loop_bar1(truth, spb), truth)}
        best_name = max((b for b in base if base[b] is not None), key=lambda b: base[b])
        out[f"{name}_recon_acc"] = acc
        for b, v in base.items():
            out[f"{name}_baseline_{b}"] = v
        out[f"{name}_best_baseline"] = base[best_name]
        out[f"{name}_best_baseline_name"] = best_name
        out[f"{name}_recon_minus_best_baseline"] = acc - base[best_name]
        out[f"{name}_recon_minus_never_play"] = acc - base["never_play"]
        if kind == "melody":
            out[f"{name}_recon_onset_pitch"] = onset_pitch_recall(pred, truth)
        else:
            p, r, f1 = hit_scores(pred, truth)
            out[f"{name}_recon_hit_precision"], out[f"{name}_recon_hit_recall"], out[f"{name}_recon_hit_f1"] = p, r, f1
        out[f"{name}_recon_nonempty"] = nonempty_share(pred, kind)
        out[f"real_{name}_nonempty"] = nonempty_share(truth, kind)
        out[f"{name}_z_distinct_outputs"] = distinct_count(pred[:nz])
        out[f"{name}_z_distinct_share"] = distinct_count(pred[:nz]) / nz if nz else None
        out[f"real_{name}_distinct"] = distinct_count(truth[:nz])
        out[f"{name}_z0_agreement"] = token_accuracy(pred[:nz], np.broadcast_to(zero[:, k], pred[:nz].shape))
        out[f"real_{name}_z0_agreement"] = token_accuracy(truth[:nz], np.broadcast_to(zero[:, k], truth[:nz].shape))
        margins.append(acc - base[best_name])
        accs.append(acc)
        z0.append(out[f"{name}_z0_agreement"])
    out["recon_acc"] = float(np.mean(accs))
    out["recon_minus_best_baseline"] = float(min(margins))
    out["z0_agreement"] = float(np.mean(z0))
    return out


def audit_samples(model, real_tokens: np.ndarray, n: int = 256, temperature: float = 0.5, seed: int = 0) -> dict:
    """Prior-sample statistics (sample_*) next to the same on the real windows (real_*)."""
    samples = _sample_tokens(model, n, temperature, seed)
    out: dict = {"n_samples": n, "sample_temperature": temperature, "sample_seed": seed}
    for prefix, tok in (("sample", samples), ("real", np.asarray(real_tokens, dtype=np.int64))):
        out.update({f"{prefix}_{key}": v for key, v in sample_statistics(model, tok).items()})
    return out


def sample_statistics(model, tokens) -> dict:
    """`track_stats` of every track of (N, steps, tracks) tokens, keyed `<track>_<stat>`."""
    out = {}
    for k, (spec, tc) in enumerate(zip(model.info["tracks"], model.codec.tracks)):
        name, min_pitch = spec.get("name", f"track{k}"), getattr(tc, "min_pitch", 0)
        for stat, v in track_stats(tokens[..., k], tc.kind, model.steps_per_bar, min_pitch).items():
            out[f"{name}_{stat}"] = v
    return out


def _bass_and_drums(model, band, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Sounding bass pitch per step (-1 silent) and drum tokens of an accompany() result."""
    bass_codec, drum_codec = model.codec.tracks[1], model.codec.tracks[2]
    bass = bass_codec.encode([n for n in band if n.track == 1], steps, fold_octaves=True)
    drums = drum_codec.encode([n for n in band if n.track == 2], steps)
    s = sounding(bass)
    return np.where(s >= 0, s - MELODY_FIRST_PITCH + bass_codec.min_pitch, -1), drums


def audit_accompaniment(model, pop_dir, count: int = 10, semitones: int = 5) -> dict:
    """Model.accompany on POP909 test-split melody segments: chord tones, transposition, drum variety."""
    from bridge import Note
    segs = pop909_segments(pop_dir, model.codec.tracks[0], model.bars, count)
    if not segs:
        return {"accomp_skipped": f"no POP909 test-split segments in {pop_dir}"}
    steps, lead_codec = model.num_steps, model.codec.tracks[0]
    bass_all, chords_all, piano_all, changed_a, changed_b, drum_rows = [], [], [], [], [], []
    for seg in segs:
        melody = lead_codec.decode(seg["lead"], track=0)
        up = [Note(n.pitch + semitones, n.start, n.end, n.velocity, 0, False) for n in melody]
        bass, drums = _bass_and_drums(model, model.accompany(melody, temperature=0.0), steps)
        bass_up, _ = _bass_and_drums(model, model.accompany(up, temperature=0.0), steps)
        bass_all.append(bass)
        chords_all += seg["chords"]
        piano_all.append(seg["piano_low"])
        changed_a.append(bass)
        changed_b.append(bass_up)
        drum_rows.append(drums)
    bass_cat = np.concatenate(bass_all)
    share, chance, n = chord_tone_share(bass_cat, chords_all)
    real, _, n_real = chord_tone_share(np.concatenate(piano_all), chords_all)
    drum_rows = np.stack(drum_rows)
    return {"accomp_segments": len(segs), "accomp_songs": len({s["song"] for s in segs}),
            "accomp_transpose_semitones": semitones,
            "accomp_bass_chord_tone": share, "accomp_bass_chord_tone_random": chance,
            "accomp_bass_chord_tone_real": real, "accomp_bass_steps": n, "accomp_real_steps": n_real,
            "accomp_bass_sounding": float(np.mean(bass_cat >= 0)),
            "accomp_bass_changed_transpose5": changed_share(np.concatenate(changed_a), np.concatenate(changed_b)),
            "accomp_bass_follows_transpose5": follows_share(np.concatenate(changed_a), np.concatenate(changed_b),
                                                            semitones),
            "accomp_drum_patterns_distinct": distinct_count(drum_rows),
            "accomp_drum_bar_patterns_distinct": distinct_count(drum_rows.reshape(-1, model.steps_per_bar))}


def check_targets(audit: dict, targets: dict) -> tuple[int, list[str]]:
    """(number of targets checked, keys that miss theirs; a missing or null value misses)."""
    failed = []
    for key, (op, want) in targets.items():
        v = audit.get(key)
        ok = v is not None and (v >= want if op == ">=" else v <= want if op == "<=" else want[0] <= v <= want[1])
        if not ok:
            failed.append(key)
    return len(targets), failed


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def graphs_sha256(info: dict) -> str:
    """sha256 over the "file sha256" lines of the package's float graphs (the int8 decoder step and
    encoder are left out: each is derived from its float graph, and add-int8 measures it against it)."""
    int8 = {f for _, f in package_module.INT8_GRAPHS.values()}
    lines = "".join(f"{f} {s}\n" for f, s in sorted(info.get("files", {}).items())
                    if f.endswith(".onnx") and f not in int8)
    return hashlib.sha256(lines.encode()).hexdigest()


def run_audit(package, windows: dict | None = None, n_windows: int | None = None, n_samples: int | None = None,
              z_inputs: int = 100, window_seed: int = 0, sample_seed: int = 0, temperature: float = 0.5,
              accomp_songs: int = 10, data_root=DATA_ROOT, midi_dirs=None, cache_dir=CACHE_DIR,
              rebuild: bool = False, threads: int = 1, provider: str = "cpu") -> dict:
    """The audit of one package (see the module docstring for the keys). `windows`: held-out tokens
    to use instead of the rebuilt test split ({"tokens": (N, steps, tracks), "song": (N,)}; tests)."""
    import bridge
    find_model = engine_module.find_model
    t0 = time.time()
    pkg = find_model(package)
    model = bridge.load_model(pkg, provider=provider, threads=threads)
    config = model.info.get("config", model.name)
    audit: dict = {"format": "latent-bridge-audit", "audit_version": AUDIT_VERSION, "package": pkg.name,
                   "config": config, "kind": model.kind, "bars": model.bars,
                   "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "model_json_sha256": _sha256(pkg / "model.json"), "graphs_sha256": graphs_sha256(model.info),
                   "provider": model.provider, "precision": getattr(model, "precision", "fp32"),
                   "encoder_precision": getattr(model, "encoder_precision", "fp32"),
                   "prior_components": None if model.prior is None else model.prior.components}
    if windows is None:
        if midi_dirs:
            dirs = [Path(d) for d in midi_dirs]
        else:
            dirs = [Path(data_root) / label for label in package_sources(pkg, config)]
        if not dirs:
            raise ValueError(f"no data sources known for config {config!r}; pass --midi-dir")
        windows = load_test_windows(config, dirs, cache_dir, rebuild)
        audit["sources"] = ",".join(d.name for d in dirs)
    else:
        audit["sources"] = windows.get("sources", "given")
    tokens, song = np.asarray(windows["tokens"], dtype=np.int64), np.asarray(windows["song"])
    expected = (model.info.get("metrics") or {}).get("windows_in_split")
    audit.update({"test_windows": int(len(tokens)), "test_songs": int(len(np.unique(song))),
                  "test_windows_expected": expected})
    n = n_windows if n_windows is not None else (512 if model.bars <= 2 else 256)
    n_samples = n_samples if n_samples is not None else (1024 if model.bars <= 2 else 256)
    idx = seeded_subset(len(tokens), n, window_seed)
    sub, sub_song = tokens[idx], song[idx]
    nz = min(z_inputs, len(sub))
    audit.update({"n_windows": int(len(sub)), "n_songs": int(len(np.unique(sub_song))), "window_seed": window_seed,
                  "z_input_songs": int(len(np.unique(sub_song[:nz])))})
    _log(f"{pkg.name}: {len(sub)} of {len(tokens)} test windows ({audit['n_songs']} songs); reconstruction")
    t = time.time()
    audit.update(audit_reconstruction(model, sub, z_inputs))
    _log(f"  reconstruction {time.time() - t:.1f}s; {n_samples} prior samples at T={temperature}")
    t = time.time()
    audit.update(audit_samples(model, sub, n_samples, temperature, sample_seed))
    _log(f"  samples {time.time() - t:.1f}s")
    if model.kind == "trio":
        pop = Path(data_root) / "pop909"
        if "surrogate_encoder" not in (model.info.get("graphs") or {}):
            audit["accomp_skipped"] = "the package has no surrogate_encoder.onnx"
        elif not pop.is_dir():
            audit["accomp_skipped"] = f"{pop} not found"
        else:
            t = time.time()
            audit.update(audit_accompaniment(model, pop, accomp_songs))
            _log(f"  accompaniment {time.time() - t:.1f}s")
    targets = TARGETS.get(config, {})
    audit["targets_checked"], audit["targets_failed"] = check_targets(audit, targets)
    audit["wall_time_s"] = round(time.time() - t0, 1)
    return {k: (_f(v) if isinstance(v, (np.floating, np.integer)) and not isinstance(v, bool) else v)
            for k, v in audit.items()}


# ============================================================================ the card
def _num(v, kind: str = "share") -> str:
    if v is None:
        return "—"
    if kind == "count":
        return f"{int(round(v)):,}"
    if kind == "semitones" or kind == "rate":
        return f"{v:.1f}"
    if kind == "margin":
        return f"{v:+.4f}"
    return f"{v:.3f}"


def _target(config: str, key: str) -> str:
    t = TARGETS.get(config, {}).get(key)
    if t is None:
        return ""
    op, want = t
    return f"{want[0]:g}–{want[1]:g}" if op == "between" else f"{'≥' if op == '>=' else '≤'} {want:g}"


def _mark(audit: dict, key: str) -> str:
    if key not in TARGETS.get(audit["config"], {}):
        return ""
    return " ✗" if key in audit.get("targets_failed", []) else " ✓"


_BASELINE_NAMES = {"never_play": "never-play", "hold_first": "hold-first", "loop_bar1": "loop-bar-1"}


def prior_words(audit: dict) -> str:
    """Where the audit's prior samples' z came from, for the card."""
    k = audit.get("prior_components")
    return "z ~ N(0, I)" if not k else f"z from the package's fitted prior ({k} components: bridge/runtime/prior.py)"


def audit_section(audit: dict) -> str:
    """The "## Musical audit" markdown section of a model card."""
    cfg = audit["config"]
    tracks = [k[:-len("_recon_acc")] for k in audit if k.endswith("_recon_acc") and k != "recon_acc"]

    def row(label, key, ref, kind="share"):
        return f"| {label} | {_num(audit.get(key), kind)}{_mark(audit, key)} | {ref} | {_target(cfg, key)} |"

    lines = [AUDIT_HEADING, "",
             f"`python -m export_onnx audit` on {audit['date'][:10]} (`audit.json` in the package holds every number). "
             f"Held-out: {audit['n_windows']:,} of the {audit['test_windows']:,} test-split windows "
             f"({audit['n_songs']} of {audit['test_songs']} songs; sources {audit['sources']}; seed "
             f"{audit['window_seed']}); reconstruction = argmax decode from the posterior mean. "
             f"Prior samples: {audit['n_samples']} {prior_words(audit)} at T = {audit['sample_temperature']:g} "
             f"(seed {audit['sample_seed']}), next to the same held-out windows. "
             f"Targets met: {audit['targets_checked'] - len(audit['targets_failed'])} of {audit['targets_checked']}.",
             "", "| statistic | model | reference | target |", "|---|---|---|---|"]
    for t in tracks:
        best = _BASELINE_NAMES.get(audit.get(f"{t}_best_baseline_name"), "")
        key = "recon_acc" if len(tracks) == 1 else f"{t}_recon_acc"
        lines.append(row(f"{t}: reconstruction accuracy", key,
                         f"best trivial baseline {_num(audit.get(f'{t}_best_baseline'))} ({best})"))
        hold = audit.get(f"{t}_baseline_hold_first")
        lines.append(f"| {t}: baselines never-play / hold-first / loop-bar-1 | | "
                     f"{_num(audit.get(f'{t}_baseline_never_play'))} / {_num(hold)} / "
                     f"{_num(audit.get(f'{t}_baseline_loop_bar1'))} | |")
        margin = "recon_minus_best_baseline" if len(tracks) == 1 else f"{t}_recon_minus_best_baseline"
        lines.append(row(f"{t}: reconstruction − best baseline", margin, "", "margin"))
        if len(tracks) > 1:
            lines.append(row(f"{t}: reconstruction − never-play", f"{t}_recon_minus_never_play", "", "margin"))
        if f"{t}_recon_onset_pitch" in audit:
            lines.append(row(f"{t}: input onsets reproduced with the right pitch", f"{t}_recon_onset_pitch", ""))
        else:
            lines.append(row(f"{t}: hits reproduced (recall) / hit F1", f"{t}_recon_hit_recall",
                             f"F1 {_num(audit.get(f'{t}_recon_hit_f1'))}"))
        lines.append(row(f"{t}: non-empty reconstructions", f"{t}_recon_nonempty",
                         f"inputs {_num(audit.get(f'real_{t}_nonempty'))}"))
        lines.append(row(f"{t}: distinct outputs over {audit['z_inputs']} inputs", f"{t}_z_distinct_outputs",
                         f"inputs {_num(audit.get(f'real_{t}_distinct'), 'count')}", "count"))
        lines.append(row(f"{t}: agreement of decode(μ) with decode(z = 0)", f"{t}_z0_agreement",
                         f"inputs vs decode(0): {_num(audit.get(f'real_{t}_z0_agreement'))}"))
    lines += ["", f"| prior samples (T = {audit['sample_temperature']:g}) | samples | real held-out | target |",
              "|---|---|---|---|"]
    labels = {"notes_per_bar": ("notes per bar", "rate"),
              "range_mean": ("pitch range per sequence (semitones, mean)", "semitones"),
              "in_key": ("share of notes in key (Krumhansl–Kessler)", "share"),
              "leaps": ("share of intervals > 12 semitones", "share"),
              "hits_per_bar": ("hits per bar", "rate"), "walls": ("share of samples > 40 hits per bar", "share"),
              "kick_on_one": ("share of bars with kick on beat 1", "share"),
              "backbeat": ("share of bars with snare on beats 2 and 4", "share"),
              "empty_bars": ("share of empty bars", "share")}
    for t in tracks:
        for stat, (label, kind) in labels.items():
            key = f"sample_{t}_{stat}"
            if key in audit:
                lines.append(f"| {t}: {label} | {_num(audit[key], kind)}{_mark(audit, key)} | "
                             f"{_num(audit.get(f'real_{t}_{stat}'), kind)} | {_target(cfg, key)} |")
    if "accomp_segments" in audit:
        lines += ["", f"Accompaniment (`Model.accompany`, temperature 0) of {audit['accomp_segments']} "
                      f"{audit['bars']}-bar MELODY segments of POP909 test-split songs (the middle valid window "
                      f"of each), scored per 16th step against the songs' chord_midi.txt annotations.", "",
                  "| accompaniment | model | reference | target |", "|---|---|---|---|",
                  row("bass: chord-tone share", "accomp_bass_chord_tone",
                      f"random pitches {_num(audit.get('accomp_bass_chord_tone_random'))}; POP909 piano's "
                      f"lowest note {_num(audit.get('accomp_bass_chord_tone_real'))}"),
                  row("bass: share of steps changed by melody +5 semitones", "accomp_bass_changed_transpose5",
                      f"bass moved +5 with it: {_num(audit.get('accomp_bass_follows_transpose5'))}"),
                  row(f"drums: distinct patterns over {audit['accomp_segments']} segments",
                      "accomp_drum_patterns_distinct",
                      f"distinct bars: {_num(audit.get('accomp_drum_bar_patterns_distinct'), 'count')}", "count")]
    elif audit.get("accomp_skipped"):
        lines += ["", f"Accompaniment not audited: {audit['accomp_skipped']}."]
    return "\n".join(lines) + "\n"


def write_audit(package_dir, audit: dict) -> dict:
    """Put the card section into MODEL_CARD.md (model.json's sha256 of the card updated when listed),
    then audit.json (with model.json's final sha256). Returns the audit as written."""
    from .model_card import with_section
    pkg = Path(package_dir)
    card = pkg / "MODEL_CARD.md"
    text = card.read_text() if card.is_file() else f"# {audit['package']} — model card\n"
    card.write_text(with_section(text, audit_section(audit)))
    manifest = pkg / "model.json"
    info = json.loads(manifest.read_text())
    if card.name in info.get("files", {}):
        try:
            package_module.update_manifest(pkg, files=[card.name])
        except ModuleNotFoundError:          # a runtime without bridge.runtime.package
            info["files"][card.name] = _sha256(card)
            tmp = manifest.with_name("model.json.tmp")
            tmp.write_text(json.dumps(info, indent=1) + "\n")
            tmp.replace(manifest)
    audit = {**audit, "model_json_sha256": _sha256(manifest)}
    (pkg / "audit.json").write_text(json.dumps(audit, indent=1) + "\n")
    return audit


# ============================================================================ CLI
def add_parser(subparsers) -> None:
    p = subparsers.add_parser("audit", help="musical audit of a model package (audit.json + card section)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("package", help="model package directory (or a name in bridge/models)")
    p.add_argument("--windows", type=int, default=None,
                   help="held-out windows to audit, a seeded subset (default 512 for 2 bars, 256 otherwise)")
    p.add_argument("--samples", type=int, default=None,
                   help="prior samples (default 1024 for 2-bar models, 256 for 16-bar ones)")
    p.add_argument("--z-inputs", type=int, default=100, help="inputs for the dependence-on-z check (default 100)")
    p.add_argument("--temperature", type=float, default=0.5, help="prior sampling temperature (default 0.5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the window subset (default 0)")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the prior samples (default 0)")
    p.add_argument("--accomp-songs", type=int, default=10, help="POP909 songs for the trio's accompaniment (10)")
    p.add_argument("--data-root", default=str(DATA_ROOT), help="folder holding the MIDI sets (../shared/data)")
    p.add_argument("--midi-dir", action="append", default=None,
                   help="MIDI folder of the model's data (repeatable; default: the card's sources under --data-root)")
    p.add_argument("--cache-dir", default=str(CACHE_DIR), help="where test windows are cached (data/audit)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached test windows")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    p.add_argument("--no-write", action="store_true", help="only print the JSON; write nothing into the package")
    p.set_defaults(func=_main)


def _main(args) -> int:
    find_model = engine_module.find_model
    audit = run_audit(args.package, n_windows=args.windows, n_samples=args.samples, z_inputs=args.z_inputs,
                      window_seed=args.seed, sample_seed=args.sample_seed, temperature=args.temperature,
                      accomp_songs=args.accomp_songs, data_root=args.data_root, midi_dirs=args.midi_dir,
                      cache_dir=args.cache_dir, rebuild=args.rebuild, threads=args.threads)
    if not args.no_write:
        pkg = find_model(args.package)
        audit = write_audit(pkg, audit)
        _log(f"wrote {pkg / 'audit.json'} and the '{AUDIT_HEADING[3:]}' section of {pkg / 'MODEL_CARD.md'}")
    print(json.dumps(audit, indent=1))
    return 0
