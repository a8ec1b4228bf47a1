"""Musical attributes measured on token arrays (pure numpy, no model needed).

These are the attributes the latent directions are computed from (export_onnx.directions) and the
ones the runtime and the tests use to measure what moving along a direction does.

Every function takes tokens shaped (B, steps, tracks) (or (steps, tracks)) plus the model's track
specs (model.json "tracks", or a SequenceCodec) and returns one float64 value per example; an
attribute that is undefined for an example (the mean pitch of a silent melody) is NaN.

melody:  note_density (note-ons per bar), mean_pitch (MIDI pitch of the note-ons), syncopation
         (share of note-ons off the beat), rest_ratio (share of steps where nothing sounds),
         pitch_range (highest minus lowest note-on pitch)
drums:   hit_density, kick_density, snare_density, hihat_density (closed + open), tom_density,
         cymbal_density (crash + ride), all hits per bar
trio:    lead_density, bass_density, drums_density (events per bar per track), plus
         lead_mean_pitch and bass_mean_pitch
Labels that are not in the notes (Groove's beat/fill, "fill_vs_groove") come from the dataset.
"""
from __future__ import annotations

import numpy as np

from .codecs import DRUM_CLASSES, MELODY_FIRST_PITCH, SequenceCodec
from .notes import STEPS_PER_BAR, STEPS_PER_BEAT

MELODY_ATTRIBUTES = ("note_density", "mean_pitch", "syncopation", "rest_ratio", "pitch_range")
DRUM_ATTRIBUTES = ("hit_density", "kick_density", "snare_density", "hihat_density", "tom_density",
                   "cymbal_density")
TRIO_ATTRIBUTES = ("lead_density", "bass_density", "drums_density", "lead_mean_pitch", "bass_mean_pitch")
# attributes a direction can be built from that are labels of the data, not functions of the tokens
LABEL_ATTRIBUTES = {"drums": ("fill_vs_groove",)}

_CLASS_INDEX = {name: i for i, (name, _) in enumerate(DRUM_CLASSES)}
_DRUM_GROUPS = {
    "kick_density": ("kick",),
    "snare_density": ("snare",),
    "hihat_density": ("closed_hihat", "open_hihat"),
    "tom_density": ("low_tom", "mid_tom", "high_tom"),
    "cymbal_density": ("crash", "ride"),
}


def _specs(tracks) -> list[dict]:
    if isinstance(tracks, SequenceCodec):
        return tracks.spec()
    return [dict(s) for s in tracks]


def kind_of(tracks) -> str:
    """melody | drums | trio, from the track specs."""
    codecs = [s["codec"] for s in _specs(tracks)]
    if codecs == ["melody"]:
        return "melody"
    if codecs == ["drums"]:
        return "drums"
    if codecs == ["melody", "melody", "drums"]:
        return "trio"
    raise ValueError(f"no attributes defined for tracks {codecs}")


def attribute_names(tracks) -> list[str]:
    """The token-computable attributes of a model with these tracks."""
    return list({"melody": MELODY_ATTRIBUTES, "drums": DRUM_ATTRIBUTES, "trio": TRIO_ATTRIBUTES}[kind_of(tracks)])


def _as_batch(tokens) -> np.ndarray:
    t = np.asarray(tokens)
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise ValueError(f"tokens must be (steps, tracks) or (B, steps, tracks), got shape {t.shape}")
    return t.astype(np.int64, copy=False)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(num.shape, np.nan)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def melody_attributes(tok: np.ndarray, min_pitch: int) -> dict[str, np.ndarray]:
    """tok: (B, steps) melody tokens."""
    tok = np.asarray(tok, dtype=np.int64)
    b, steps = tok.shape
    bars = steps / STEPS_PER_BAR
    onset = tok >= MELODY_FIRST_PITCH
    n_on = onset.sum(axis=1)
    pitch = np.where(onset, min_pitch + tok - MELODY_FIRST_PITCH, 0).astype(np.float64)
    # the state at each step is the last event (note-on or note-off) at or before it
    idx = np.where(tok != 0, np.arange(steps)[None, :], -1)
    last = np.maximum.accumulate(idx, axis=1)
    state = np.where(last >= 0, np.take_along_axis(tok, np.maximum(last, 0), axis=1), 0)
    sounding = state >= MELODY_FIRST_PITCH
    offbeat = (np.arange(steps) % STEPS_PER_BEAT != 0)[None, :]
    hi = np.where(onset, pitch, -np.inf).max(axis=1)
    lo = np.where(onset, pitch, np.inf).min(axis=1)
    rng = np.where(n_on > 0, hi - lo, np.nan)
    return {
        "note_density": n_on / bars,
        "mean_pitch": _safe_div(pitch.sum(axis=1), n_on),
        "syncopation": _safe_div((onset & offbeat).sum(axis=1), n_on),
        "rest_ratio": 1.0 - sounding.sum(axis=1) / steps,
        "pitch_range": rng,
    }


def _popcount(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    return sum(((x >> i) & 1) for i in range(len(DRUM_CLASSES)))


def drum_attributes(tok: np.ndarray) -> dict[str, np.ndarray]:
    """tok: (B, steps) drum bitmask tokens."""
    tok = np.asarray(tok, dtype=np.int64)
    bars = tok.shape[1] / STEPS_PER_BAR
    out = {"hit_density": _popcount(tok).sum(axis=1) / bars}
    for name, classes in _DRUM_GROUPS.items():
        mask = sum(1 << _CLASS_INDEX[c] for c in classes)
        out[name] = _popcount(tok & mask).sum(axis=1) / bars
    return out


def compute(tokens, tracks, names=None) -> dict[str, np.ndarray]:
    """All (or the named) token attributes of a batch: {name: (B,) float64}."""
    specs = _specs(tracks)
    kind = kind_of(specs)
    t = _as_batch(tokens)
    if t.shape[2] != len(specs):
        raise ValueError(f"tokens have {t.shape[2]} tracks, the model {len(specs)}")
    if kind == "melody":
        out = melody_attributes(t[:, :, 0], specs[0].get("min_pitch", 0))
    elif kind == "drums":
        out = drum_attributes(t[:, :, 0])
    else:
        lead = melody_attributes(t[:, :, 0], specs[0].get("min_pitch", 0))
        bass = melody_attributes(t[:, :, 1], specs[1].get("min_pitch", 0))
        drums = drum_attributes(t[:, :, 2])
        out = {"lead_density": lead["note_density"], "bass_density": bass["note_density"],
               "drums_density": drums["hit_density"], "lead_mean_pitch": lead["mean_pitch"],
               "bass_mean_pitch": bass["mean_pitch"]}
    if names is not None:
        unknown = [n for n in names if n not in out]
        if unknown:
            raise KeyError(f"unknown attribute(s) {unknown} for a {kind} model; known: {sorted(out)}")
        out = {n: out[n] for n in names}
    return out


def compute_notes(note_lists, tracks, num_steps: int, names=None) -> dict[str, np.ndarray]:
    """The same on lists of bridge.Note (notes outside a melody range are folded by octaves)."""
    codec = tracks if isinstance(tracks, SequenceCodec) else SequenceCodec.from_spec(_specs(tracks))
    tokens = np.stack([codec.encode(list(notes), num_steps, fold_octaves=True) for notes in note_lists])
    return compute(tokens, codec, names)


def effect_per_unit(amounts, values) -> float:
    """Least-squares slope of an attribute's mean against the amount moved (NaN-safe)."""
    a = np.asarray(amounts, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    if ok.sum() < 2 or np.ptp(a[ok]) == 0:
        return float("nan")
    return float(np.polyfit(a[ok], v[ok], 1)[0])
