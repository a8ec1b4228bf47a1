"""The surface address space end to end: a real daemon (`python -m bridge serve`) with the shipped
mel_2bar and drums_2bar, driven by liblo's oscsend (typed floats, ints, strings) and heard by liblo's
oscdump on the surface's reply port; a second surface is a WebSocket client of the control page.
The patterns that come back are checked against the same shipped model run in this process."""
from __future__ import annotations

import json

import numpy as np
import pytest
from websockets.sync.client import connect

from bridge.core.directions import direction_vector
from bridge.daemon.client import spawn_server
from bridge.live.knobs import KNOB_RANGE
from bridge.runtime.engine import load_model

from surface_helpers import SHIPPED, OscDump, note_rows, oscsend


@pytest.fixture(scope="module")
def dump():
    d = OscDump()
    yield d
    d.close()


@pytest.fixture(scope="module")
def daemon(dump, tmp_path_factory):
    toml = tmp_path_factory.mktemp("surface") / "surface.toml"
    toml.write_text(f'reply_port = {dump.port}\nosc_notes = true\nmodel = "mel_2bar"\nmorph_steps = 4\n'
                    '[addresses]\n"knob/8" = "/mine/fader8"\n')
    server = spawn_server([SHIPPED / "mel_2bar", SHIPPED / "drums_2bar"], "--surface", str(toml), "--web", "0",
                          "--workers", "2")
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def mel():
    return load_model(SHIPPED / "mel_2bar")


def web_url(server) -> str:
    line = next(x for x in server.log_lines() if "control page on" in x)
    return line.split("web=")[1].strip()


def status_after(dump, since, text):
    return dump.wait_for(lambda a, t, args: a == "/lb/status" and text in args[0], since=since)[1][2][0]


def test_labels_and_knobs_follow_the_model_and_a_knob_plays_the_moved_latent(daemon, dump, mel):
    mark = dump.mark()
    oscsend(daemon.port, "/lb/model", "s", "mel_2bar")
    names = [d["name"] for d in mel.info["directions"]]
    for i in range(1, 8):     # labels: the model's direction table, in order
        dump.wait_for(lambda a, t, args, i=i: a == f"/lb/knob/{i}/label" and t == "s" and args == [names[i - 1]],
                      since=mark)
    dump.wait_for(lambda a, t, args: a == "/mine/fader8/label" and args == [names[7]], since=mark)   # renamed
    mark = dump.mark()
    oscsend(daemon.port, "/lb/knob/1", "f", 0.9)          # a float
    oscsend(daemon.port, "/lb/knob/2", "i", 1)            # an int is a number too
    dump.wait_for(lambda a, t, args: a == "/lb/knob/2" and t == "f" and args == [1.0], since=mark)
    # the knobs move the latent the surface started from (the prior's seed-0 draw, through the
    # package's sampler when it ships a pair) along directions 0, 1
    z = mel.prior_latents(1, 0)[0].astype(np.float64)
    for index, value in ((0, 2 * float(np.float32(0.9)) - 1), (1, 1.0)):
        z += KNOB_RANGE * value * direction_vector(mel.info, index, mel.z_size).astype(np.float64)
    want = note_rows(mel.decode(z.astype(np.float32)[None], temperature=0.0, seed=0)[0])
    dump.wait_for(lambda a, t, args: a == "/lb/note" and dump.patterns(mark) and dump.patterns(mark)[-1] == want,
                  since=mark)
    values = [m[2] for m in dump.messages[mark:] if m[0] == "/lb/knob/1"]
    assert values and values[-1] == [pytest.approx(0.9, abs=1e-6)]


def test_bad_input_gets_a_clear_status_and_the_daemon_goes_on(daemon, dump):
    cases = [("/lb/knob/1", "f", [1.5], "/lb/knob/1 takes one number 0..1, got 1.5"),
             ("/lb/knob/1", "s", ["loud"], "/lb/knob/1 takes one number 0..1, got 'loud'"),
             ("/lb/xy", "f", [0.5], "/lb/xy takes 2 numbers 0..1, got 1 argument"),
             ("/lb/model", "s", ["nosuch"], "no model 'nosuch' is loaded"),
             ("/lb/model", "i", [7], "takes a model name or an index 0..1, got 7"),
             ("/lb/sample", "s", ["now"], "is a trigger"),
             ("/lb/nope", "", [], "unknown address /lb/nope"),
             ("/mine/other", "f", [0.1], "unknown address /mine/other"),
             ("/lb/knob/8", "f", [0.5], "unknown address /lb/knob/8")]     # renamed: the old address is gone
    for address, types, args, text in cases:
        mark = dump.mark()
        oscsend(daemon.port, address, types, *args)
        got = status_after(dump, mark, text)
        assert got.startswith("error: "), got
    with daemon.client(timeout=10.0) as c:             # the JSON protocol is untouched
        assert c.request("ping", echo="still here").data["echo"] == "still here"
    mark = dump.mark()
    oscsend(daemon.port, "/lb/temperature", "f", 0.25)
    dump.wait_for(lambda a, t, args: a == "/lb/temperature" and args == [0.25], since=mark)


def test_generate_learn_a_b_pad_corners_and_morph(daemon, dump, mel):
    oscsend(daemon.port, "/lb/temperature", "f", 0.0)
    learned = {}
    for slot in "ab":
        mark = dump.mark()
        oscsend(daemon.port, "/lb/sample", "f", 1.0)              # a button's press
        seed = int(status_after(dump, mark, "generated").rsplit("seed ", 1)[1].rstrip(")"))
        # generate = a prior sample (the package's sampler, if it ships one), encoded: the pad's
        # corner decodes that latent
        z = mel.encode([mel.sample(1, temperature=0.0, seed=seed)[0]])
        learned[slot] = note_rows(mel.decode(z, temperature=0.0, seed=0)[0])
        mark = dump.mark()
        oscsend(daemon.port, f"/lb/{slot}/learn")                 # no MIDI in: the pattern playing
        status_after(dump, mark, f"{slot.upper()} learned: the pattern playing")
    # the earlier test left knobs 1 and 2 turned: generate plays the new latent moved by them, so the
    # corners are checked through the pad, which decodes the learned latents themselves
    for (x, y), slot in (((0.0, 0.0), "a"), ((1.0, 0.0), "b")):
        mark = dump.mark()
        oscsend(daemon.port, "/lb/xy", "ff", x, y)
        status_after(dump, mark, "pad cell 0," + ("0" if slot == "a" else "7"))
        dump.wait_for(lambda *m: bool(dump.patterns(mark)), since=mark)   # its notes follow the status
        assert dump.patterns(mark)[-1] == learned[slot]
    mark = dump.mark()
    oscsend(daemon.port, "/lb/morph/go", "i", 1)
    status_after(dump, mark, "morph step 1")
    status_after(dump, mark, "morph step 2")
    mark = dump.mark()
    oscsend(daemon.port, "/lb/morph/stop")
    status_after(dump, mark, "morph stopped")
    mark = dump.mark()
    oscsend(daemon.port, "/lb/morph/stop", "f", 0.0)              # a button's release does nothing
    oscsend(daemon.port, "/lb/morph/stop")
    status_after(dump, mark, "no morph to stop")


def test_a_second_surface_keeps_its_own_state(daemon, dump):
    with connect(web_url(daemon).replace("http", "ws") + "ws") as page:
        state = json.loads(page.recv(timeout=10))
        assert state["type"] == "state" and state["models"] == ["drums_2bar", "mel_2bar"]
        page.send(json.dumps({"action": "model", "args": ["drums_2bar"]}))
        page.send(json.dumps({"action": "knob/3", "args": [0.1]}))
        page.send(json.dumps({"action": "temperature", "args": [9.5]}))
        while not (state["model"] == "drums_2bar" and state["temperature"] == 9.5 and state["knobs"][2] == 0.1):
            state = json.loads(page.recv(timeout=10))
            state = state if state["type"] == "state" else dict(state, model=None, temperature=None, knobs=[None] * 3)
        page.send("not json")
        while state.get("type") != "status":
            state = json.loads(page.recv(timeout=10))
        assert state["status"].startswith("error: a page message is a JSON object")
        mark = dump.mark()
        oscsend(daemon.port, "/lb/knob/4", "f", 0.75)             # the OSC surface still has its own
        dump.wait_for(lambda a, t, args: a == "/lb/knob/4" and args == [0.75], since=mark)
    assert not [m for m in dump.messages[mark:] if m[0] == "/lb/model" or m[0] == "/lb/temperature"]
    assert not [m for m in dump.messages if m[0] == "/lb/knob/3" and m[2] == [pytest.approx(0.1)]]
    assert [m[2] for m in dump.messages if m[0] == "/lb/model"][-1] == ["mel_2bar"]
