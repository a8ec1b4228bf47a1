"""Protocol 1.2's symbol-free forms (bridge.daemon.typed): typed requests read into the op's fields,
numeric /bridge/seq laid out and read back; then a real daemon (a `python -m bridge serve`
subprocess started with --token, tiny packages) over real UDP: typed transport answered by a typed
ok, bad typed input answered bad_request (never internal), numeric sequences equal to the JSON ones,
long ones in parts, the JSON forms unchanged.
"""
from __future__ import annotations

import json
import math
import socket
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.core.errors import BadRequest
from bridge.daemon.client import spawn_server
from bridge.daemon.protocol import MAX_REPLY_BYTES, PROTOCOL_VERSION, build_message, sequence_messages
from bridge.daemon.typed import (KNOB, MAX_NUMERIC_NOTES, TRANSPORT, decode_numeric_seq, decode_typed_ok,
                                 flatten_extras, is_typed, numeric_sequence_messages)

TOKEN = "typed-forms-secret"
ROWS = [[60, 0.0, 0.5, 100, 0], [64, 0.5, 0.25, 90, 0], [67, 1.75, 2.25, 1, 0]]


# ---- typed requests -------------------------------------------------------------------------------

def test_typed_transport_fields_are_the_json_forms_fields():
    assert TRANSPORT.fields([120.0, 8.5, 1, 4, 4]) == {"tempo": 120.0, "beat": 8.5, "playing": 1,
                                                       "numerator": 4, "denominator": 4}
    assert TRANSPORT.fields([90, 0]) == {"tempo": 90, "beat": 0}          # the rest default in the op
    assert TRANSPORT.fields([90, 0, True, '{"session":"abc"}']) == {"tempo": 90, "beat": 0, "playing": True,
                                                                   "session": "abc"}


def test_typed_knob_fields_and_the_trailing_json():
    assert KNOB.fields(["mel_2bar", "pc1", 0.5]) == {"model": "mel_2bar", "direction": "pc1", "value": 0.5}
    assert KNOB.fields(["mel_2bar", 2, -1]) == {"model": "mel_2bar", "direction": 2, "value": -1}
    got = KNOB.fields(["mel_2bar", "pc1", 0.5, '{"scale":{"root":2,"intervals":[0,2,3]},"temperature":0}'])
    assert got == {"model": "mel_2bar", "direction": "pc1", "value": 0.5, "temperature": 0,
                   "scale": {"root": 2, "intervals": [0, 2, 3]}}


@pytest.mark.parametrize("form,args,needle", [
    (TRANSPORT, [120.0], "at least 2 arguments"),
    (TRANSPORT, [120.0, "8"], "argument 3 ('beat') must be a number, got '8'"),
    (TRANSPORT, [120.0, '{"token": "t"}'], "at least 2 arguments"),
    (TRANSPORT, [math.nan, 1.0], "argument 2 ('tempo'): nan is not a finite number"),
    (TRANSPORT, [120.0, math.inf], "inf is not a finite number"),
    (TRANSPORT, [120.0, 1.0, None], "argument 4 ('playing') must be a number, got nil"),
    (TRANSPORT, [120.0, 1.0, b"\x01"], "got a blob"),
    (TRANSPORT, [120.0, 1.0, 1, 4, 4, 4], "at most 5 arguments"),
    (TRANSPORT, [120.0, 1.0, '{"beat": 3}'], "'beat' given both"),
    (TRANSPORT, [120.0, 1.0, "{not json"], "the JSON object after the typed arguments: bad JSON"),
    (TRANSPORT, [120.0, 1.0, '{"x": 1e400}'], "1e400"),
    (KNOB, ["mel_2bar", "pc1"], "at least 3 arguments"),
    (KNOB, [7, "pc1", 0.5], "argument 2 ('model') must be a string, got 7"),
    (KNOB, ["mel_2bar", None, 0.5], "argument 3 ('direction') must be a name or a number, got nil"),
    (KNOB, ["mel_2bar", "pc1", "0.5"], "argument 4 ('value') must be a number"),
    (KNOB, ["mel_2bar", "pc1", 0.5, "[1]"], "object"),
])
def test_bad_typed_arguments_are_bad_requests(form, args, needle):
    with pytest.raises(BadRequest) as e:
        form.fields(args)
    assert needle in str(e.value)


def test_which_requests_are_typed():
    assert is_typed("transport", [1, 120.0, 0.0])
    assert is_typed("transport", [1, 120.0])                     # typed, and then too short
    assert is_typed("knob", [1, "mel_2bar", "pc1", 0.5])
    assert not is_typed("transport", [1, '{"tempo": 120, "beat": 0}'])   # the JSON form
    assert not is_typed("knob", [1, '{"model": "m"}'])
    assert not is_typed("knob", [1])
    assert not is_typed("sample", [1, 2, 3])                     # no typed form: the JSON rules apply


def test_typed_reply_arguments_round_trip():
    args = TRANSPORT.reply_args({"tempo": 120.0, "beat": 9.25, "bar": 2, "playing": True})
    assert args == (120.0, 9.25, 2, 1)
    assert decode_typed_ok("transport", list(args)) == {"tempo": 120.0, "beat": 9.25, "bar": 2, "playing": 1}
    assert KNOB.reply_args({"direction": "pc1", "index": 1, "value": -0.5}) == ("pc1", 1, -0.5)
    with pytest.raises(ValueError):
        decode_typed_ok("sample", [1.0])


# ---- numeric /bridge/seq ----------------------------------------------------------------------------

def test_numeric_seq_layout_and_read_back():
    extras = [{"index": 3, "morph": 5, "step": 1, "slot": 2, "bar": 17, "bars_per_step": 1, "t": 0.25,
               "knob": {"direction": "pc1", "index": 1, "value": 0.5}, "knobs": {"pc1": 0.5, "note_density": -1.0},
               "tracks": ["melody", "bass"], "missing": None}]
    (msg,) = numeric_sequence_messages(7, "mel_2bar", 2, [ROWS], extras)
    assert msg[:8] == (7, 3, 1, "mel_2bar", 2, 0, 1, 13)
    assert msg[-16:] == (3, 60, 0.0, 0.5, 100, 0, 64, 0.5, 0.25, 90, 0, 67, 1.75, 2.25, 1, 0)
    rid, index, count, obj = decode_numeric_seq(list(msg))
    (text,) = [m[3] for m in sequence_messages(7, "mel_2bar", 2, [ROWS], extras)]
    want = json.loads(text)
    want.pop("missing")                                   # null extras are left out of the numeric form
    assert (rid, index, count) == (7, 3, 1) and obj == want
    # every argument is an OSC scalar build_message can send as i, f or s
    data = build_message("/bridge/seq", msg)
    assert b",iiisiiii" in data


def test_numeric_extras_flatten_and_the_header_overrides():
    assert flatten_extras({"a": {"b": {"c": 1}}, "l": [True, 2.5], "n": None, "big": 2 ** 40}) == [
        ("a.b.c", 1), ("l[0]", 1), ("l[1]", 2.5), ("big", float(2 ** 40))]
    (msg,) = numeric_sequence_messages(1, "trio_16bar", 16, [ROWS], [{"bars": 4, "tracks": ["melody", "bass", "drums"]}])
    assert msg[4] == 4                                   # accompany's `bars` overrides the model's, as in JSON
    assert decode_numeric_seq(list(msg))[3]["tracks"] == ["melody", "bass", "drums"]


def test_long_numeric_sequences_come_in_parts_that_fit_a_datagram():
    rows = [[36 + i % 60, i * 0.25, 0.25, 1 + i % 127, 0] for i in range(1000)]
    msgs = numeric_sequence_messages(9, "mel_2bar", 2, [rows, ROWS])
    first = [m for m in msgs if m[1] == 0]
    assert len(first) == math.ceil(1000 / MAX_NUMERIC_NOTES) and [m[5:7] for m in first] == [(p, len(first)) for p in range(len(first))]
    merged = [n for m in first for n in decode_numeric_seq(list(m))[3]["notes"]]
    assert merged == rows
    assert all(len(build_message("/bridge/seq", m)) <= MAX_REPLY_BYTES for m in msgs)
    # a header so long that fewer notes fit: the byte limit splits too
    fat = [{"pad": "x" * 59000}]
    parts = numeric_sequence_messages(9, "mel_2bar", 2, [rows[:200]], fat)
    assert len(parts) > 1 and all(len(build_message("/bridge/seq", m)) <= MAX_REPLY_BYTES for m in parts)
    assert [n for m in parts for n in decode_numeric_seq(list(m))[3]["notes"]] == rows[:200]


def test_decode_refuses_a_seq_whose_note_count_lies():
    (msg,) = numeric_sequence_messages(1, "m", 2, [ROWS])
    with pytest.raises(ValueError):
        decode_numeric_seq(list(msg[:-1]))


# ---- the real daemon ------------------------------------------------------------------------------

BIGSEQ_OPS = '''
from bridge.daemon import registry as ops
from bridge.daemon.registry import Sequences

@ops.op("typed_test_bigseq")
def bigseq(session, request):
    model = request.model()
    rows = [[36 + i % 60, i * 0.25, 0.25, 1 + i % 127, 0] for i in range(request.integer("rows"))]
    return Sequences(model, [rows], [{"row": 1, "label": "big"}])
'''


@pytest.fixture(scope="module")
def srv(tiny_models_dir, tmp_path_factory):
    ops_dir = tmp_path_factory.mktemp("typed_ops")
    (ops_dir / "typed_test_ops.py").write_text(textwrap.dedent(BIGSEQ_OPS))
    server = spawn_server([tiny_models_dir / "mel_2bar"], "--workers", "1", "--token", TOKEN,
                          "--ops-module", "typed_test_ops", env={"PYTHONPATH": str(ops_dir)})
    yield server
    assert server.stop() == 0


@pytest.fixture
def numeric(srv):
    client = srv.client(timeout=10.0, token=TOKEN, notes_format="numeric")
    yield client
    client.close()


def test_hello_says_protocol_1_2_the_notes_format_and_the_typed_ops(srv, numeric):
    assert numeric.server_info["protocol"] == PROTOCOL_VERSION == "1.2"
    assert numeric.server_info["notes_format"] == "numeric"
    assert numeric.server_info["typed"] == ["knob", "transport"]
    plain = srv.client(timeout=10.0, token=TOKEN)
    try:
        assert plain.server_info["notes_format"] == "json"
        r = plain.request("hello", reply_port=plain.address[1], notes_format="binary", check=False)
        assert r.status == "error" and r.error[0] == "bad_request" and "notes_format" in r.error[1]
    finally:
        plain.close()


def test_typed_transport_gets_a_typed_ok(numeric):
    r = numeric.request_typed("transport", 120.0, 9.0, 0, 4, 4)      # stopped at beat 9: bar 2
    assert r.status == "ok" and r.data == {"tempo": 120.0, "beat": 9.0, "bar": 2, "playing": 0}
    r = numeric.request_typed("transport", 96, 4)                      # ints; playing, meter by default
    assert r.data["tempo"] == 96.0 and r.data["bar"] == 1 and r.data["playing"] == 1
    assert numeric.request("transport", tempo=120, beat=9, playing=False).data == {   # JSON still works
        "tempo": 120.0, "beat": 9.0, "bar": 2, "playing": False}


@pytest.mark.parametrize("args,code,needle", [
    ((120.0,), "bad_request", "at least 2 arguments"),
    ((120.0, "nine"), "bad_request", "'beat') must be a number"),
    ((float("nan"), 1.0), "bad_request", "nan is not a finite number"),
    ((120.0, 1.0, 1, 3, 4), "bad_request", "only 4/4"),
    ((1200.0, 1.0), "bad_request", "tempo must be in"),
    ((120.0, 5e7), "bad_request", "'beat' must be in"),
    ((120.0, 1.0, 2), "bad_request", "'playing' must be true/false"),
    ((120.0, 1.0, 1, 4.5, 4), "bad_request", "'numerator' must be an integer"),
    ((120.0, 1.0, 1, 4, 4, 4), "bad_request", "at most 5 arguments"),
    ((120.0, 1.0, True, 4, 4), None, None),                           # OSC T for playing
])
def test_bad_typed_transport_is_a_bad_request_never_internal(numeric, args, code, needle):
    r = numeric.request_typed("transport", *args, check=False)
    if code is None:
        assert r.status == "ok", r.error
        return
    assert r.status == "error" and r.error[0] == code, r.error
    assert needle in r.error[1], r.error


@pytest.mark.parametrize("args,code,needle", [
    (("nope", "pc1", 0.5), "unknown_model", "nope"),
    ((3, "pc1", 0.5), "bad_request", "'model') must be a string"),
    (("mel_2bar", "pc1", "up"), "bad_request", "'value') must be a number"),
    (("mel_2bar", "pc1", float("inf")), "bad_request", "not a finite number"),
    (("mel_2bar", 1.5, 0.5), "bad_request", "direction"),
    (("mel_2bar", "pc1"), "bad_request", "at least 3 arguments"),
    (("mel_2bar", "pc1", 0.5, {"value": 1}), "bad_request", "given both"),
])
def test_bad_typed_knob_is_a_bad_request_never_internal(numeric, args, code, needle):
    options = args[-1] if isinstance(args[-1], dict) else None
    r = numeric.request_typed("knob", *(args[:-1] if options else args), options=options, check=False)
    assert r.status == "error" and r.error[0] == code, r.error
    assert needle in r.error[1], r.error


def test_typed_requests_need_the_token_like_any_other(srv, numeric):
    r = numeric.request_typed("transport", 120.0, 1.0, options={"token": "wrong-secret-value"}, check=False)
    assert r.status == "error" and r.error[0] == "bad_request" and "shared secret" in r.error[1]
    assert numeric.request_typed("transport", 120.0, 1.0).status == "ok"   # the client adds the right one


def test_typed_request_from_another_port_names_its_session(srv, numeric):
    """A tool that sends each message from a new port (oscsend) names the session in the trailing
    JSON; the typed reply goes to the session's reply port."""
    sid = numeric.server_info["session"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        rid = 4242
        opts = json.dumps({"session": sid, "token": TOKEN})
        other.sendto(build_message("/bridge/transport", (rid, 100.0, 16.0, 0, 4, 4, opts)), (srv.host, srv.port))
        deadline = 50
        while deadline:
            deadline -= 1
            for address, args in numeric.receive(0.2):
                if args and args[0] == rid:
                    assert (address, args) == ("/bridge/ok", [rid, 100.0, 16.0, 4, 0])
                    return
        pytest.fail("no typed reply at the session's reply port")


def test_numeric_sequences_equal_the_json_ones(srv, numeric):
    plain = srv.client(timeout=10.0, token=TOKEN)
    try:
        for op, fields in (("sample", {"model": "mel_2bar", "n": 3, "seed": 4, "temperature": 1.0}),
                           ("interpolate", {"model": "mel_2bar", "a": ROWS, "b": ROWS[::-1], "steps": 3})):
            want = plain.request(op, **fields)
            got = numeric.request(op, **fields)
            assert got.count == want.count and len(got.sequences) == len(want.sequences)
            assert got.sequences == want.sequences, op                # notes, header and extras (t)
    finally:
        plain.close()


def test_numeric_sequence_in_parts_over_udp(numeric):
    r = numeric.request("typed_test_bigseq", model="mel_2bar", rows=700)
    (seq,) = r.sequences
    assert seq["parts"] == math.ceil(700 / MAX_NUMERIC_NOTES) and seq["row"] == 1 and seq["label"] == "big"
    assert seq["notes"] == [[36 + i % 60, i * 0.25, 0.25, 1 + i % 127, 0] for i in range(700)]


def test_raw_numeric_seq_has_no_string_but_the_model_and_the_extras_keys(numeric):
    """What a Max client receives: every note value a number; the only strings are the model name and
    the extras' keys (a fixed set), so the reply interns no new symbol."""
    rid = numeric.send("sample", model="mel_2bar", n=1, seed=11, temperature=1.0)
    seen = []
    for _ in range(50):
        for address, args in numeric.receive(0.2):
            if args and args[0] == rid:
                seen.append((address, args))
        if any(a == "/bridge/done" for a, _ in seen):
            break
    (seq,) = [args for a, args in seen if a == "/bridge/seq"]
    assert [x for x in seq if isinstance(x, str)] == ["mel_2bar"]
    numeric._waiting.pop(rid, None)


OSC_SCALAR = st.one_of(st.integers(-(2 ** 31), 2 ** 31 - 1), st.floats(width=32), st.booleans(), st.none(),
                       st.text(max_size=20), st.sampled_from(["mel_2bar", "pc1", "{}", '{"x":1}', "{", b"\x00"]))


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(op=st.sampled_from(["transport", "knob"]), args=st.lists(OSC_SCALAR, max_size=8))
def test_any_typed_arguments_get_one_answer_never_internal(numeric, op, args):
    """Whatever typed arguments arrive (numbers, NaN, strings, T/F, nil, blobs, too few or too many),
    the request gets ok or a bad_request / unknown_model error, and the daemon keeps serving."""
    r = numeric.request_typed(op, *args, check=False)
    assert r.status in ("ok", "error"), r
    if r.status == "error":
        assert r.error[0] in ("bad_request", "unknown_model"), (args, r.error)
    assert numeric.request("ping").ok
