"""Accompaniment: bass and drums for a melody, from a trio model's latent space (no torch).

    m = bridge.load_model("trio_16bar")                 # a trio package with surrogate_encoder.onnx
    band = m.accompany(melody_notes, temperature=0.0, seed=None)     # = m.accompanist().accompany(...)
    # band: track 0 = the input melody note for note, 1 = bass, 2 = drums (is_drum)

How (export_onnx/surrogate/ trains the graph): the package's `surrogate_encoder` graph reads the
lead track alone and predicts the latent the trio encoder would give the whole trio; the trio
decoder turns that z into lead + bass + drums; the decoded lead is thrown away and the input
melody takes its place.

Length: the melody is cut into windows of the model's length (16 bars) from beat 0; the last one is
padded with rests. All windows are decoded in one batch and their bass and drums are laid end to
end, then cut at the melody's last bar (whole bars, at least one).

An `Accompanist` holds the surrogate encoder's session; a Model opens its own on first use
(`Model.accompanist()`). The OSC op is `accompany` in bridge.daemon.ops; the offline command is
`python -m bridge accompany` (bridge.cli.accompany).
"""
from __future__ import annotations

import math
import threading

import numpy as np

from ..core.errors import CodecError, InvalidInput, ModelError
from ..core.notes import BEATS_PER_BAR, Note
from .package import OPTIONAL_GRAPH_IO, SURROGATE_ROLE, optional_graph
from .sessions import open_session, pick_providers

ROLE = SURROGATE_ROLE
MAX_BARS = 256                     # longest melody one call accompanies (16 windows of 16 bars)


def has_surrogate(model) -> bool:
    """Whether `model` (a Model) is a trio model whose package has a surrogate encoder."""
    return model.kind == "trio" and ROLE in (model.info.get("graphs") or {})


# ---------------------------------------------------------------------------------------------- input checks
def check_time_signature(time_signature) -> None:
    """None (unknown: taken as 4/4) or (4, 4); anything else is an InvalidInput (a ValueError)."""
    if time_signature is None:
        return
    try:
        num, den = (int(x) for x in time_signature)
    except (TypeError, ValueError):
        raise InvalidInput(f"time_signature must be [numerator, denominator], got {time_signature!r}") from None
    if (num, den) != (4, 4):
        raise InvalidInput(f"accompany needs 4/4 music (the trio model's grid is 16 steps per 4/4 bar); "
                           f"got {num}/{den}")


def melody_of(notes) -> list[Note]:
    """The melody to accompany: the non-drum notes of track 0. Raises InvalidInput (a ValueError)
    with the reason for an empty or drums-only input, or one whose pitched notes are all on other
    tracks."""
    notes = list(notes)
    for n in notes:
        if not isinstance(n, Note):
            raise InvalidInput(f"expected bridge.Note objects, got {type(n).__name__}")
        if not (math.isfinite(n.start) and math.isfinite(n.end)) or n.start < 0 or n.end <= n.start:
            raise InvalidInput(f"note {n} must have 0 <= start < end")
    if not notes:
        raise InvalidInput("empty melody: accompany needs at least one note")
    pitched = [n for n in notes if not n.is_drum]
    if not pitched:
        raise InvalidInput("drums-only input: accompany needs a melody (pitched, non-drum notes on track 0)")
    melody = [n for n in pitched if n.track == 0]
    if not melody:
        tracks = sorted({n.track for n in pitched})
        raise InvalidInput(f"no melody notes on track 0 (pitched notes are on track(s) {tracks}); "
                           f"put the melody on track 0")
    return melody


def melody_bars(melody: list[Note]) -> int:
    """Whole bars covering the melody (at least 1)."""
    end = max(n.end for n in melody)
    return max(1, int(math.ceil(end / BEATS_PER_BAR - 1e-9)))


# ---------------------------------------------------------------------------------------------- accompany
class Accompanist:
    """Bass and drums for melodies, from one trio Model and its package's surrogate encoder.

    Holds the surrogate encoder's onnxruntime session (opened with the model's provider and thread
    count) and which track it reads. Thread-safe: calls to the surrogate are serialised.
    """

    def __init__(self, model):
        """Open the surrogate encoder of `model` (a bridge.runtime.engine.Model).

        Raises:
            ModelError: not a trio model; no surrogate encoder in the package; a graph whose
                inputs and outputs do not fit the model.
        """
        if model.kind != "trio":
            raise ModelError(f"model {model.name!r} is a {model.kind} model; accompany needs a trio model")
        g = optional_graph(model.info, ROLE)
        if g is None:
            raise ModelError(f"model {model.name!r} has no surrogate encoder ({ROLE}.onnx); add one with "
                             f"`python -m export_onnx train-surrogate ... --package {model.path}`")
        self.model = model
        self.track = int(g.get("track", 0))
        classes = model.num_classes[self.track]
        sess = open_session(model.path / g["file"], pick_providers(model.provider), model.threads)
        ins = {i.name: i.shape for i in sess.get_inputs()}
        outs = [o.name for o in sess.get_outputs()]
        want_in, want_out = OPTIONAL_GRAPH_IO[ROLE]
        shape = ins.get(want_in[0])
        if list(ins) != list(want_in) or want_out[0] not in outs or shape is None or len(shape) != 3 \
                or shape[1] != model.num_steps or shape[2] != classes:
            raise ModelError(f"{model.path / g['file']}: expected inputs (B, {model.num_steps}, {classes}) "
                             f"-> mu, sigma; the graph has {ins} -> {outs}")
        self.session = sess
        self._lock = threading.Lock()

    def melody_windows(self, melody: list[Note], bars: int | None = None) -> np.ndarray:
        """(W, steps) lead tokens, one row per window of the model's length; notes belong to the
        window their start falls in and are cut at its end. Pitches outside the range move by
        octaves. Raises InvalidInput when the melody does not fit the lead codec."""
        model = self.model
        bars = bars or melody_bars(melody)
        win_beats = model.bars * BEATS_PER_BAR
        count = int(math.ceil(bars / model.bars))
        codec = model.codec.tracks[self.track]
        rows = []
        for w in range(count):
            lo, hi = w * win_beats, (w + 1) * win_beats
            part = [Note(n.pitch, n.start - lo, min(n.end, hi) - lo, n.velocity, 0, False)
                    for n in melody if lo <= n.start < hi]
            try:
                rows.append(codec.encode(part, model.num_steps, fold_octaves=True))
            except CodecError as e:
                raise InvalidInput(f"the melody does not fit model {model.name!r}: {e}") from None
        return np.stack(rows).astype(np.int64)

    def predict_z(self, lead_tokens: np.ndarray) -> np.ndarray:
        """(W, steps) lead tokens -> (W, z): the surrogate encoder's prediction of the trio latent."""
        lead = np.asarray(lead_tokens, dtype=np.int64)
        onehot = np.eye(self.model.num_classes[self.track], dtype=np.float32)[lead]
        with self._lock:
            mu = self.session.run(["mu"], {"inputs": onehot})[0]
        return np.ascontiguousarray(mu, dtype=np.float32)

    def accompany(self, melody_notes, temperature: float = 0.0, seed=None, time_signature=None,
                  velocity: int = 100, mask=None) -> list[Note]:
        """Bass and drums for a melody.

        Args:
            melody_notes: bridge.Note list; its non-drum notes on track 0 are the melody.
            temperature: 0 = argmax decode, otherwise sampled.
            seed: an int or a numpy Generator; makes sampling reproducible.
            time_signature: None (taken as 4/4) or (4, 4).
            velocity: of the bass and drum notes.
            mask: None, or the decode's logit mask (bridge.core.scale.logit_mask: keeps the bass in
                a scale; the melody is the input's, the drums are never masked).

        Returns:
            One note list sorted by (start, track, pitch): track 0 = the input melody note for note,
            track 1 = bass, track 2 = drums, cut at the melody's last whole bar.

        Raises:
            InvalidInput (a ValueError): an empty or drums-only melody, not 4/4, longer than
                MAX_BARS bars, notes the lead codec cannot hold.
        """
        model = self.model
        check_time_signature(time_signature)
        melody = melody_of(melody_notes)
        bars = melody_bars(melody)
        if bars > MAX_BARS:
            raise InvalidInput(f"the melody is {bars} bars long; accompany takes at most {MAX_BARS} bars per call")
        z = self.predict_z(self.melody_windows(melody, bars))
        tokens = model.decode_tokens(z, temperature=temperature, seed=seed, mask=mask)   # (W, steps, 3)
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
