"""The live ops on a palette, in a real daemon with the shipped mel_2bar: a knob on one of the
palette's principal directions and a morph toward a draw of the palette play what the engine
computes here from the exported palette."""
from __future__ import annotations

import numpy as np
import pytest

from bridge.core.palette import Palette
from bridge.daemon.registry import notes_to_rows
from bridge.live.knobs import KNOB_RANGE
from live_helpers import LiveSim


@pytest.fixture(scope="module")
def srv(shipped_daemon):
    return shipped_daemon(("mel_2bar",))


@pytest.fixture(scope="module")
def folk(srv, folk_clip_rows):
    """The palette 'folk' learned in the daemon, as the daemon exports it."""
    client = srv.client(timeout=30.0)
    try:
        client.request("learn", model="mel_2bar", name="folk", clips=folk_clip_rows)
        exported = client.request("palette_export", model="mel_2bar", name="folk").data["palette"]
    finally:
        client.close()
    return Palette.from_dict(exported)


def test_knob_on_a_palette_direction(srv, c, folk, shipped_mel, folk_clip_rows):
    palette = folk
    d = c.request("directions", model="mel_2bar", palette="folk").data
    assert [x["name"] for x in d["palette_directions"]] == [f"folk:{i}" for i in range(len(palette.directions))]
    sim = LiveSim(srv, 120.0, start_beat=64.0)     # one client: its encode sets the latent its knob moves
    try:
        z = np.asarray(sim.ok(sim.send("encode", model="mel_2bar", notes=folk_clip_rows[1])[0])["z"], dtype=np.float32)
        k, _ = sim.send("knob", model="mel_2bar", palette="folk", direction=0, value=0.9)
        assert sim.wait_for(lambda: sim.seqs(k), 20), sim.replies(k)
        seq = sim.seqs(k)[0][1]
        bad, _ = sim.send("knob", model="mel_2bar", palette="folk", direction=len(palette.directions), value=0.5)
        assert sim.wait_for(lambda: sim.replies(bad, "/bridge/error"), 10)
        assert sim.replies(bad, "/bridge/error")[0][2][1] == "bad_request"
    finally:
        sim.close()
    assert seq["knob"] == {"direction": "folk:0", "index": 0, "value": 0.9}
    moved = z.astype(np.float64) + KNOB_RANGE * 0.9 * palette.direction(0).astype(np.float64)
    want = shipped_mel.decode(moved.astype(np.float32)[None], 0.0, 0)[0]
    assert seq["notes"] == notes_to_rows(want)
    assert notes_to_rows(want) != notes_to_rows(shipped_mel.decode(z[None], 0.0, 0)[0])        # the knob moved the notes


def test_morph_toward_a_palette_draw(srv, folk, shipped_mel, folk_clip_rows):
    palette = folk
    sim = LiveSim(srv, 240.0, start_beat=64.0)
    try:
        rid, _ = sim.send("morph", model="mel_2bar", a=folk_clip_rows[2], palette="folk", spread=0.5, steps=2,
                          bars_per_step=1, seed=9)
        sim.ok(rid)
        assert sim.wait_for(lambda: len(sim.seqs(rid)) >= 2, 30), sim.replies(rid)
        last = [s for _, s in sim.seqs(rid) if s["step"] == 1][0]
    finally:
        sim.close()
    zb = palette.sample(1, 0.5, np.random.default_rng(9))
    assert last["notes"] == notes_to_rows(shipped_mel.decode(zb, 0.0, 9)[0])
