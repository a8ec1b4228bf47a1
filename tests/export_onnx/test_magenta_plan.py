"""export_onnx.magenta_plan: the converter picked from the spec, each part's sizes read from the
weights, the shape rules, and the weights left over (no Node needed)."""
import numpy as np
import pytest

from export_onnx import magenta_plan as mp
from export_onnx.magenta_reference import Arch, random_weights
from export_onnx.magenta_weights import MagentaImportError

TRIO_ARGS = {"melArgs": {"minPitch": 21, "maxPitch": 108}, "bassArgs": {"minPitch": 28, "maxPitch": 60},
             "drumsArgs": {}}
MEL = {"type": "MelodyConverter", "args": {"numSteps": 32, "minPitch": 48, "maxPitch": 83}}
DRUMS_HIER = {"type": "DrumsConverter", "args": {"numSteps": 64, "numSegments": 4}}
TRIO_FLAT = {"type": "TrioConverter", "args": {"numSteps": 32, **TRIO_ARGS}}
HIER = Arch(enc_units=12, dec_units=16, dec_layers=2, z_size=8, bar_enc_units=10, cond_units=6, cond_layers=3)
FLAT = Arch(enc_units=9, dec_units=7, dec_layers=3, z_size=5)


def _spec(conv):
    return {"type": "MusicVAE", "dataConverter": conv}


def test_the_converter_is_picked_once_from_the_spec():
    assert mp.SUPPORTED_CONVERTERS == tuple(mp.CONVERTERS) == ("MelodyConverter", "DrumsConverter", "TrioConverter")
    mel = mp.plan_import(_spec(MEL), random_weights(MEL, FLAT, 0))
    assert (mel.kind, mel.roll_input, mel.split_decoders, mel.hierarchical, mel.bars) == ("melody", False, 0, False, 2)
    assert [(t.name, t.depth, t.min_pitch, t.max_pitch) for t in mel.tracks] == [("melody", 38, 48, 83)]
    drums = mp.plan_import(_spec(DRUMS_HIER), random_weights(DRUMS_HIER, HIER, 0))
    assert (drums.kind, drums.roll_input, drums.hierarchical, drums.bars) == ("drums", True, True, 4)
    assert drums.num_classes == [mp.DRUM_DEPTH]
    trio = mp.plan_import(_spec(TRIO_FLAT), random_weights(TRIO_FLAT, FLAT, 0))
    assert (trio.kind, trio.split_decoders, trio.converter) == ("trio", 3, "TrioConverter")
    assert [(t.name, t.program) for t in trio.tracks] == [("lead", 0), ("bass", 33), ("drums", 0)]
    assert trio.input_size == 90 + 35 + 512
    # the converter's own checks run before any weight is read
    with pytest.raises(MagentaImportError, match="TrioConverter needs bassArgs"):
        mp.plan_import(_spec({"type": "TrioConverter", "args": {"numSteps": 32, "melArgs": {}}}), {})


def test_each_part_reads_its_sizes_from_the_weights():
    flat = mp.plan_import(_spec(MEL), random_weights(MEL, FLAT, 1, sigma=True))
    assert (flat.enc_units, flat.bar_enc_units, flat.z_size, flat.has_sigma) == (9, 0, 5, True)
    assert (flat.dec_units, flat.dec_layers, flat.cond_units, flat.cond_layers) == (7, 3, 0, 0)
    hier = mp.plan_import(_spec(DRUMS_HIER), random_weights(DRUMS_HIER, HIER, 1))
    assert (hier.enc_units, hier.bar_enc_units, hier.z_size, hier.has_sigma) == (12, 10, 8, False)
    assert (hier.dec_units, hier.dec_layers, hier.cond_units, hier.cond_layers) == (16, 2, 6, 3)


def test_weights_no_part_reads_are_reported_as_ignored():
    w = random_weights(MEL, FLAT, 2)
    assert mp.plan_import(_spec(MEL), w).ignored == []
    w["global_step"] = np.zeros(1, np.float32)
    w["encoder/cell_0/some_optimizer_slot"] = np.zeros(3, np.float32)
    assert mp.plan_import(_spec(MEL), w).ignored == ["encoder/cell_0/some_optimizer_slot", "global_step"]


def test_per_track_decoders_must_agree_in_size():
    w = random_weights(TRIO_FLAT, FLAT, 3)
    other = random_weights(TRIO_FLAT, Arch(enc_units=9, dec_units=11, dec_layers=3, z_size=5), 3)
    for name in other:
        if name.startswith("core_decoder_2/"):
            w[name] = other[name]
    with pytest.raises(MagentaImportError, match=r"per-track decoders differ in size \(3x7 vs 3x11\)"):
        mp.plan_import(_spec(TRIO_FLAT), w)


def test_the_shape_rules():
    w = mp.CheckedWeights({"a/kernel": np.zeros((5, 12)), "a/bias": np.zeros(12), "d/kernel": np.zeros((4, 2)),
                           "d/bias": np.zeros(3), "c/cell_0/kernel": np.zeros((2, 4)), "c/cell_0/bias": np.zeros(4),
                           "c/cell_1/kernel": np.zeros((2, 4)), "c/cell_3/kernel": np.zeros((2, 4)),
                           "c/cell_3/bias": np.zeros(4)})
    w.lstm("a/", 2, 3, "an LSTM")                    # kernel (inputs + units, 4 units), bias (4 units)
    with pytest.raises(MagentaImportError, match=r"'a/kernel' has shape \(5, 12\), expected \(6, 12\) \(an LSTM\)"):
        w.lstm("a/", 3, 3, "an LSTM")
    with pytest.raises(MagentaImportError, match=r"'d/bias' has shape \(3,\), expected \(2,\) \(a layer bias\)"):
        w.dense("d/", 4, 2, "a layer")
    with pytest.raises(MagentaImportError, match="missing weight 'e/kernel'"):
        w.dense("e/", 1, 1, "absent")
    with pytest.raises(MagentaImportError, match="c/cell_1/kernel but no c/cell_1/bias"):
        w.lstm_layers("c/cell_%d/")
    assert w.ignored() == ["c/cell_0/bias", "c/cell_0/kernel", "c/cell_1/kernel", "c/cell_3/bias", "c/cell_3/kernel"]
    del w.weights["c/cell_1/kernel"]
    assert [p for p, _ in w.lstm_layers("c/cell_%d/")] == ["c/cell_0/"]   # up to the first missing cell
