import numpy as np
import pytest

from bridge.core.notes import Note
from bridge.io import pianoroll
from bridge.io.pianoroll import TRACK_COLORS, save_pianoroll_png


def _draw(monkeypatch, tmp_path, seqs, titles=None):
    """save_pianoroll_png, keeping the figure it saved: its axes map notes to the PNG's pixels."""
    from matplotlib.figure import Figure
    from matplotlib.image import imread
    saved = []
    original = Figure.savefig

    def spy(fig, *args, **kwargs):
        saved.append(fig)
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    path = tmp_path / "roll.png"
    save_pianoroll_png(seqs, path, titles=titles)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = saved
    return imread(str(path))[..., :3], fig


def _pixel(img, fig, ax, x_bars, pitch):
    """The RGB of the PNG pixel at data point (x in bars, pitch) of `ax`."""
    px, py = ax.transData.transform((x_bars, pitch))
    assert img.shape[0] == round(fig.get_figheight() * fig.dpi)
    return img[int(round(img.shape[0] - py)), int(round(px))]


def _note_rgb(note):
    """The colour a note box has over the white background (its track colour at its alpha)."""
    from matplotlib.colors import to_rgb
    alpha = 0.35 + 0.65 * note.velocity / 127
    return np.asarray(to_rgb(TRACK_COLORS[note.track % len(TRACK_COLORS)])) * alpha + (1 - alpha)


def test_writes_one_panel_per_sequence_with_every_note_where_it_belongs(monkeypatch, tmp_path):
    seqs = [[Note(60, 0, 1), Note(64, 1, 3, 60, 1)], [Note(36, 0, 0.25, 100, 2, True), Note(38, 2, 2.25, 127, 2, True)],
            []]
    img, fig = _draw(monkeypatch, tmp_path, seqs, titles=["a", "b", "empty"])
    assert img.shape[0] > img.shape[1] / 2     # three stacked panels make a tall picture
    axes = fig.axes
    assert len(axes) == 3 and [ax.get_title() for ax in axes] == ["a", "b", "empty"]
    white = np.ones(3)
    for ax, notes in zip(axes, seqs):
        for n in notes:
            width = min(n.duration, 0.25) if n.is_drum else n.duration
            for frac in (0.2, 0.5, 0.8):       # inside the box, along its length, at its pitch
                x = (n.start + frac * width) / 4
                np.testing.assert_allclose(_pixel(img, fig, ax, x, n.pitch), _note_rgb(n), atol=0.03,
                                           err_msg=f"{n} at {frac} of its length")
            # just after its end and a semitone off its pitch: background (no other note there)
            np.testing.assert_allclose(_pixel(img, fig, ax, (n.start + width) / 4 + 0.02, n.pitch), white, atol=0.03)
            np.testing.assert_allclose(_pixel(img, fig, ax, (n.start + width / 2) / 4, n.pitch + 1.1), white,
                                       atol=0.03)
    # the melody panel's y range follows its pitches; the empty panel draws nothing at all
    assert axes[0].get_ylim() == (58, 66) and axes[0].get_xlim() == (0, 1)
    empty = [_pixel(img, fig, axes[2], x, p) for x in (0.1, 0.3, 0.6, 0.9) for p in (59, 60, 61)]
    np.testing.assert_allclose(empty, np.ones((len(empty), 3)), atol=0.03)


def test_rejects_mismatched_titles(tmp_path):
    with pytest.raises(ValueError, match="titles"):
        save_pianoroll_png([[Note(60, 0, 1)]], tmp_path / "x.png", titles=["a", "b"])
    with pytest.raises(ValueError):
        save_pianoroll_png([], tmp_path / "y.png")
    assert pianoroll.BEATS_PER_BAR == 4
