import pytest

from bridge.core.notes import Note
from bridge.io.pianoroll import save_pianoroll_png


def test_writes_png_with_one_panel_per_sequence(tmp_path):
    from matplotlib.image import imread
    seqs = [[Note(60, 0, 1), Note(64, 1, 3, 60, 1)], [Note(36, 0, 0.25, 100, 2, True)], []]
    path = tmp_path / "roll.png"
    save_pianoroll_png(seqs, path, titles=["a", "b", "empty"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = imread(str(path))
    assert img.shape[0] > img.shape[1] / 2     # three stacked panels make a tall picture
    assert img[..., :3].std() > 0               # something was drawn


def test_rejects_mismatched_titles(tmp_path):
    with pytest.raises(ValueError, match="titles"):
        save_pianoroll_png([[Note(60, 0, 1)]], tmp_path / "x.png", titles=["a", "b"])
    with pytest.raises(ValueError):
        save_pianoroll_png([], tmp_path / "y.png")
