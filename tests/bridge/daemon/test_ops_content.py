"""The core ops answer with the right music: a daemon serving the shipped (trained) mel_2bar, every
sequence of an interpolate, palette and variations reply compared with what the engine decodes here.

test_server.py runs every op on tiny random-weight packages, whose encoders map different melodies
to nearly the same latent: there an interpolation from the wrong end, a palette with two corners
swapped or variations without their spread decode to the same notes as the right answer. A trained
model tells them apart, and each test below checks that the wrong answer would differ (it is not
vacuous).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bridge
from bridge.core import latent
from bridge.core.notes import Note

MODELS = Path(bridge.__file__).parent / "models"
MELODY = [[60, 0, 1, 100, 0], [62, 1, 0.5, 90, 0], [64, 1.5, 0.5, 80, 0], [67, 2, 2, 100, 0],
          [65, 4, 1, 100, 0], [64, 5, 1, 100, 0], [62, 6, 2, 100, 0]]
MELODY_B = [[72, 0, 0.5, 100, 0], [71, 0.5, 0.5, 100, 0], [69, 1, 1, 100, 0], [48, 3, 1, 100, 0],
            [76, 4, 3, 100, 0]]


def notes(rows):
    return [Note.from_row(r) for r in rows]


def rows(seq):
    return [n.to_row() for n in seq]


@pytest.fixture(scope="module")
def srv(shipped_daemon):
    return shipped_daemon(("mel_2bar",))


@pytest.fixture(scope="module")
def mel(shipped_mel):
    return shipped_mel


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_interpolate_every_step(c, mel, method):
    r = c.request("interpolate", model="mel_2bar", a=MELODY, b=MELODY_B, steps=5, method=method)
    want = mel.interpolate(notes(MELODY), notes(MELODY_B), steps=5, method=method)
    assert [s["notes"] for s in r.sequences] == [rows(w) for w in want]
    # not vacuous: the steps are not all alike, their order and the method matter
    assert len({str(w) for w in want}) >= 3 and want != want[::-1]
    other = mel.interpolate(notes(MELODY), notes(MELODY_B), steps=5, method="lerp" if method == "slerp" else "slerp")
    assert want[0] == other[0] and want[-1] == other[-1] and want != other


def test_palette_every_cell(c, mel):
    corners = [MELODY, MELODY_B, MELODY[:3], MELODY_B[2:]]
    r = c.request("palette", model="mel_2bar", corners=corners, size=3)
    want = mel.palette([notes(k) for k in corners], size=3)
    assert [s["notes"] for s in r.sequences] == [rows(w) for w in want]
    assert [(s["row"], s["col"]) for s in r.sequences] == [(i // 3, i % 3) for i in range(9)]
    assert len({str(w) for w in want}) >= 4                          # the cells differ
    swapped = mel.palette([notes(k) for k in (corners[0], corners[2], corners[1], corners[3])], size=3)
    assert swapped != want                                           # the corners' places matter


def test_variations_around_the_notes(c, mel):
    r = c.request("variations", model="mel_2bar", notes=MELODY, n=4, spread=0.8, seed=9)
    z = mel.encode([notes(MELODY)])[0]
    # as the op documents: z + spread x N(0, I) (seeded), decoded at temperature 0
    want = mel.decode(latent.variations(z, 4, 0.8, rng=9), temperature=0.0)
    assert [s["notes"] for s in r.sequences] == [rows(w) for w in want]
    rec = mel.decode(np.asarray(z, np.float32)[None], temperature=0.0)[0]
    assert sum(w != rec for w in want) >= 2 and len({str(w) for w in want}) >= 2   # they do vary
    near = c.request("variations", model="mel_2bar", notes=MELODY, n=4, spread=0.0, seed=9)
    assert all(s["notes"] == rows(rec) for s in near.sequences)      # spread 0: the reconstruction


def test_decode_a_batch_in_order_and_reconstruct(c, mel):
    zs = (np.random.default_rng(4).standard_normal((3, mel.z_size))).astype(np.float32)
    r = c.request("decode", model="mel_2bar", z=[[float(x) for x in z] for z in zs])
    want = mel.decode(zs, temperature=0.0)
    assert [s["index"] for s in r.sequences] == [0, 1, 2]
    assert [s["notes"] for s in r.sequences] == [rows(w) for w in want]
    assert want != want[::-1]                                        # order matters
    rec = c.request("reconstruct", model="mel_2bar", notes=MELODY_B)
    want = mel.decode(mel.encode([notes(MELODY_B)]), temperature=0.0)[0]
    assert rec.sequences[0]["notes"] == rows(want)
    assert want != mel.decode(mel.encode([notes(MELODY)]), temperature=0.0)[0]
