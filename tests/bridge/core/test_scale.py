"""bridge.core.scale: a scale as a logit mask over a model's classes (melody/bass note-ons only)."""
from __future__ import annotations

import numpy as np
import pytest

from bridge.core.codecs import MELODY_FIRST_PITCH, DrumCodec, MelodyCodec, SequenceCodec
from bridge.core.errors import BadRequest
from bridge.core.scale import Scale, logit_mask

C_MAJOR = Scale(0, (0, 2, 4, 5, 7, 9, 11))


def test_pitch_classes_follow_the_root():
    a_minor = Scale(9, (0, 2, 3, 5, 7, 8, 10))
    assert a_minor.pitch_classes == C_MAJOR.pitch_classes          # the relative minor
    assert Scale(2, (0, 2, 4, 5, 7, 9, 11)).pitch_classes == {2, 4, 6, 7, 9, 11, 1}   # D major
    assert C_MAJOR.contains(60) and not C_MAJOR.contains(61) and C_MAJOR.contains(71)
    assert C_MAJOR.to_dict() == {"root": 0, "intervals": [0, 2, 4, 5, 7, 9, 11]}
    for bad in [(12, (0,)), (-1, (0,)), (0, ()), (0, (0, 12)), (0, (2, 2))]:
        with pytest.raises(BadRequest):
            Scale(*bad)


def test_melody_mask_rules_out_exactly_the_note_ons_outside_the_scale():
    codec = SequenceCodec([MelodyCodec(21, 108)])
    mask = logit_mask(codec, C_MAJOR)
    assert mask.shape == (codec.input_size,) and mask.dtype == np.float32
    assert mask[0] == 0 and mask[1] == 0                   # no event, note-off: always allowed
    for pitch in range(21, 109):
        allowed = mask[MELODY_FIRST_PITCH + pitch - 21] == 0
        assert allowed == (pitch % 12 in {0, 2, 4, 5, 7, 9, 11}), pitch
        assert allowed or np.isneginf(mask[MELODY_FIRST_PITCH + pitch - 21])


def test_trio_mask_covers_lead_and_bass_never_drums():
    codec = SequenceCodec([MelodyCodec(21, 108), MelodyCodec(21, 108), DrumCodec()])
    mask = logit_mask(codec, Scale(7, (0, 3, 5, 7, 10)))     # G minor pentatonic
    lead, bass, drums = np.split(mask, np.cumsum(codec.num_classes)[:-1])
    assert np.isneginf(lead).sum() == np.isneginf(bass).sum() > 0
    assert np.array_equal(lead, bass)
    assert not drums.any()
    assert logit_mask(SequenceCodec([DrumCodec()]), C_MAJOR) is None      # nothing to mask
    assert logit_mask(codec, None) is None
    chromatic = Scale(0, tuple(range(12)))
    assert logit_mask(codec, chromatic) is None
