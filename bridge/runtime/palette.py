"""Learn a palette from a player's clips, and draw from it (bridge.core.palette holds the math).

    palette = learn_palette(model, [clip1_notes, clip2_notes, clip3_notes], name="verse")
    notes = sample_palette(model, palette, n=4, temperature=0.5, spread=1.0, seed=0)

Every clip is cut into every window of the model's length that starts on a bar (stride one bar, as
the MusicVAE paper extracts its training data); windows without a note are dropped and repeated
windows kept once; the windows are encoded (posterior means) and the low-rank Gaussian is fitted.
A clip shorter than the model is one window, padded with rests.
"""
from __future__ import annotations

import time

import numpy as np

from ..core.notes import BEATS_PER_BAR, Note
from ..core.palette import MIN_WINDOWS, Palette, PaletteError

MIN_CLIPS = 3


def clip_windows(model, clips: list[list[Note]]) -> np.ndarray:
    """The unique non-empty windows of every clip as tokens (n, steps, tracks).

    Raises:
        PaletteError: fewer than MIN_CLIPS clips, clips of the wrong kind for the model (drums for a
            melody model or the other way round), or notes the model's codec cannot represent.
    """
    if len(clips) < MIN_CLIPS:
        raise PaletteError(f"a palette is learned from at least {MIN_CLIPS} clips, got {len(clips)}")
    notes = [n for clip in clips for n in clip]
    if not notes:
        raise PaletteError("the clips hold no notes")
    drums = sum(n.is_drum for n in notes)
    if model.kind == "drums" and drums == 0:
        raise PaletteError(f"{model.name} is a drum model and the clips hold no drum notes")
    if model.kind == "melody" and drums == len(notes):
        raise PaletteError(f"{model.name} is a melody model and the clips hold only drum notes")
    span = model.bars * BEATS_PER_BAR
    seen, windows = set(), []
    for clip in clips:
        if not clip:
            continue
        bars = int(np.ceil(max(n.end for n in clip) / BEATS_PER_BAR - 1e-9))
        for start_bar in range(max(1, bars - model.bars + 1)):
            lo = start_bar * BEATS_PER_BAR
            part = [Note(n.pitch, n.start - lo, min(n.end, lo + span) - lo, n.velocity, n.track, n.is_drum)
                    for n in clip if lo <= n.start < lo + span]
            if not part:
                continue
            try:
                tokens = model.notes_to_tokens([part])[0]
            except ValueError as e:
                raise PaletteError(f"a clip's notes do not fit {model.name}: {e}") from None
            if not tokens.any():
                continue
            key = tokens.tobytes()
            if key not in seen:
                seen.add(key)
                windows.append(tokens)
    if len(windows) < MIN_WINDOWS:
        raise PaletteError(f"the clips give {len(windows)} distinct windows of {model.bars} bars; "
                           f"a palette needs at least {MIN_WINDOWS}")
    return np.stack(windows)


def learn_palette(model, clips: list[list[Note]], name: str) -> Palette:
    """Encode every window of the clips and fit a palette in `model`'s z space.

    Returns:
        the Palette; its info holds clips, windows, encode_ms and fit_ms.
    Raises:
        PaletteError: see clip_windows.
    """
    t0 = time.perf_counter()
    tokens = clip_windows(model, clips)
    z = model.encode_tokens(tokens)
    encode_ms = 1000 * (time.perf_counter() - t0)
    return Palette.fit(z, name, model.name, info={"clips": len(clips), "encode_ms": round(encode_ms, 3)})


def read_palette(path) -> Palette:
    """A palette file written by `python -m bridge learn`.

    Raises:
        PaletteError: the file cannot be read or is not a palette.
    """
    try:
        with open(path, encoding="utf-8") as f:
            return Palette.from_json(f.read())
    except OSError as e:
        raise PaletteError(f"{path}: {e.strerror or e}") from None


def check_palette(model, palette: Palette) -> None:
    """Raises PaletteError when the palette was not learned in this model's z space."""
    if palette.model != model.name or palette.z_size != model.z_size:
        raise PaletteError(f"palette {palette.name!r} belongs to {palette.model} (z {palette.z_size}), "
                           f"not {model.name} (z {model.z_size})")


def sample_palette(model, palette: Palette, n: int = 1, temperature: float = 0.5, spread: float = 1.0,
                   seed=0) -> list[list[Note]]:
    """n sequences drawn from the palette (instead of N(0, I)) and decoded at `temperature`.

    Raises:
        PaletteError: a palette of another model, n < 1, a bad spread.
    """
    check_palette(model, palette)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return model.decode(palette.sample(n, spread, rng), temperature, rng)
