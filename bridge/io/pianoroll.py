"""Piano-roll pictures of note lists, for the CLIs' reports.

Uses matplotlib's Agg canvas directly instead of pyplot, so importing this never changes the
process-wide backend of a host application.
"""
from __future__ import annotations

from ..core.notes import BEATS_PER_BAR, Note

TRACK_COLORS = ["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#8c564b"]


def save_pianoroll_png(sequences: list[list[Note]], path, titles=None, dpi: int = 100) -> None:
    """One panel per note list, stacked vertically; x in bars, y in MIDI pitch, colour per track.
    Drum hits are drawn as short marks at their pitch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    sequences = [list(s) for s in sequences]
    if not sequences:
        raise ValueError("nothing to draw: no note lists")
    if titles is not None and len(titles) != len(sequences):
        raise ValueError(f"{len(titles)} titles for {len(sequences)} note lists")
    fig = Figure(figsize=(10, 2.2 * len(sequences) + 0.4), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(sequences), 1, squeeze=False)[:, 0]
    for k, (ax, notes) in enumerate(zip(axes, sequences)):
        end_beats = max((n.end for n in notes), default=BEATS_PER_BAR)
        bars = max(1, int(-(-end_beats // BEATS_PER_BAR)))
        if notes:
            ax.add_collection(_note_boxes(notes))
        pitches = [n.pitch for n in notes] or [60]
        ax.set_xlim(0, bars)
        ax.set_ylim(min(pitches) - 2, max(pitches) + 2)
        ax.vlines(range(bars + 1), 0, 1, transform=ax.get_xaxis_transform(), color="#999999", linewidth=0.5)
        ax.set_ylabel("pitch")
        if titles is not None:
            ax.set_title(str(titles[k]), fontsize=9)
    axes[-1].set_xlabel("bar")
    fig.tight_layout()
    fig.savefig(str(path), format="png")


def _note_boxes(notes: list[Note]):
    """All notes of a panel as one collection: one artist instead of one per note keeps a whole
    song (thousands of notes) fast to draw."""
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import to_rgba

    boxes, colors = [], []
    for n in notes:
        x = n.start / BEATS_PER_BAR
        w = (min(n.duration, 0.25) if n.is_drum else n.duration) / BEATS_PER_BAR
        y = n.pitch - 0.4
        boxes.append([(x, y), (x + w, y), (x + w, y + 0.8), (x, y + 0.8)])
        colors.append(to_rgba(TRACK_COLORS[n.track % len(TRACK_COLORS)], 0.35 + 0.65 * n.velocity / 127))
    return PolyCollection(boxes, facecolors=colors, edgecolors="none")
