"""OSC fuzzing of a real daemon on loopback (hypothesis).

Whatever arrives, the daemon stays up and answers ping afterwards; every well-formed request (valid
OSC, an int32 request id, a /bridge/ address that is not a reply address) gets exactly one terminal
reply, never `internal`; a well-formed *bad* request gets /bridge/error with the expected code."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage

from bridge.daemon.client import spawn_server

from .helpers import Raw, osc, request, request_bytes

FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
INT32 = st.integers(-(2 ** 31), 2 ** 31 - 1)
ALL_OPS = ["ping", "hello", "models", "stats", "sample", "encode", "decode", "reconstruct", "interpolate",
           "attribute", "palette", "variations", "transport", "morph", "stop", "knob", "directions",
           "accompany"]
MEL = [[60, 0, 1, 100, 0], [64, 1, 1, 90, 0], [67, 2, 2, 80, 0]]
Z4 = [0.1, -0.2, 0.3, 0.0]                      # tiny packages: z_size 4
EXPECTED_BAD = {"bad_request", "too_large", "unknown_model", "unknown_op"}


@pytest.fixture(scope="module")
def daemon(tiny_models_dir):
    server = spawn_server([Path(tiny_models_dir) / "mel_2bar", Path(tiny_models_dir) / "drums_2bar"],
                          "--workers", "2")
    yield server
    assert server.proc.poll() is None, "the daemon died during the fuzzing"
    assert server.stop() == 0


@pytest.fixture
def raw(daemon):
    r = Raw(daemon)
    yield r
    r.close()


def _check_one(raw, rid: int, data: bytes, codes=EXPECTED_BAD):
    raw.send(data)
    msgs = raw.collect(rid)
    address, args = msgs[-1]
    assert address == "/bridge/error", (data[:200], msgs)
    assert args[1] in codes, (data[:200], args)
    raw.ping()       # up, and no second terminal reply for rid arrived before the pong
    assert not [m for m in raw.stray if m[1] and m[1][0] == rid], raw.stray


# ---- garbage: only liveness can be asked for ---------------------------------------------------------

def _valid_requests():
    return st.builds(lambda op, rid, n: request(op, rid, {"model": "mel_2bar", "n": n}),
                     st.sampled_from(ALL_OPS), INT32, st.integers(1, 3))


garbage = st.one_of(
    st.binary(max_size=512),
    st.binary(max_size=64).map(lambda b: b"/bridge/sample\x00\x00" + b),
    st.binary(max_size=64).map(lambda b: b"#bundle\x00" + b),
    st.tuples(_valid_requests(), st.integers(0, 200)).map(lambda t: t[0][: t[1]]),         # truncated
    st.tuples(_valid_requests(), st.integers(0, 63), st.integers(0, 255))
      .map(lambda t: t[0][: t[1] % len(t[0])] + bytes([t[2]]) + t[0][t[1] % len(t[0]) + 1:]),  # one byte flipped
    st.sampled_from([b"", b"/", b"/bridge/", b"/bridge/ping\x00\x00\x00\x00,i\x00\x00",
                     b"/bridge/ping\x00\x00\x00\x00,ii\x00\x00\x00\x00\x01",
                     b"/bridge/ping\x00\x00\x00\x00,s\x00\x00\xff\xfe\x00\x00",
                     b"#bundle\x00" + b"\x00" * 8 + b"\xff\xff\xff\xff"]),
)


@FUZZ
@given(data=garbage)
def test_garbage_never_takes_the_daemon_down(raw, data):
    raw.send(data)
    raw.ping()
    raw.stray.clear()


# ---- well-formed bad requests -------------------------------------------------------------------------

bad_number = st.sampled_from([-1, 0, 10 ** 12, -10 ** 12, 1.5, "3", True, None, [], {}, 1e999, -1e999, 2 ** 64])
bad_note_row = st.one_of(
    st.sampled_from([[], [60], [60, 0], [60, 0, 1, 100, 0, 7], 60, "C4", {}, None, True]),
    st.tuples(st.sampled_from([-1, 128, 1000, 60.5, "60", None, True, -2 ** 40]), st.just(0), st.just(1))
      .map(list),
    st.tuples(st.just(60), st.sampled_from([-0.25, -1e9, "0", None, 1e999, -1e999]), st.just(1)).map(list),
    st.tuples(st.just(60), st.just(0), st.sampled_from([0, -1, "1", None, 1e999, -0.0])).map(list),
    st.tuples(st.just(60), st.just(0), st.just(1), st.sampled_from([0, 128, -5, 1.5, "loud"])).map(list),
    st.tuples(st.just(60), st.just(0), st.just(1), st.just(100), st.sampled_from([1, 3, -1, 99, 0.5])).map(list),
)
bad_notes = st.one_of(
    st.sampled_from(["notes", 5, {}, None, [[[]]], "[[60,0,1]]"]),
    st.tuples(st.integers(0, 3), bad_note_row).map(lambda t: MEL[: t[0]] + [t[1]] + MEL[t[0]:]),
    st.just([[60, 0, 1]] * 4097),                                      # over max_notes: too_large
)


def _field_cases(huge: bool = True):
    """(op, fields) that are wrong in exactly one way (huge: include a note list near the datagram size)."""
    def with_(op, base, key, values):
        return values.map(lambda v: (op, dict(base, **{key: v})))
    m = {"model": "mel_2bar"}
    notes = bad_notes if huge else bad_notes.filter(lambda v: not isinstance(v, list) or len(v) < 100)
    return st.one_of(
        with_("sample", m, "n", bad_number.filter(lambda v: v is not None)),
        with_("sample", m, "temperature", st.sampled_from([-0.1, 10.5, "hot", True, 1e999, [0.5]])),
        with_("sample", m, "seed", st.sampled_from([-1, 2 ** 64, 0.5, "x", 1e999])),
        with_("sample", {}, "model", st.one_of(st.sampled_from(["nope", 5, [], {}, "", "MEL_2BAR"]),
                                               st.text(min_size=1, max_size=300).filter(lambda s: s not in ("mel_2bar", "drums_2bar"))),
              ),
        with_("encode", m, "notes", notes),
        with_("reconstruct", m, "notes", notes),
        with_("variations", dict(m, notes=MEL), "spread", st.sampled_from([-1, 11, 1e999, "wide"])),
        with_("variations", dict(m, notes=MEL), "n", st.sampled_from([0, 33, -3, 1e9])),
        with_("interpolate", dict(m, a=MEL), "b", notes.filter(lambda v: v is not None)),
        with_("interpolate", dict(m, a=MEL, b=MEL), "steps", st.sampled_from([1, 0, -3, 65, 10 ** 9, "8", 2.5])),
        with_("interpolate", dict(m, a=MEL, b=MEL), "method", st.sampled_from(["cubic", 3, ""])),
        with_("decode", m, "z", st.sampled_from([[], [1, 2], Z4 + [0.0], [Z4] * 33, "z", [1e39] * 4,
                                                  [[1, 2, 3]], [None] * 4, [True] * 4, [1e999] * 4])),
        with_("attribute", dict(m, z=Z4), "attribute", st.sampled_from(["nope", 3, ""])),
        with_("palette", m, "corners", st.sampled_from([[MEL] * 3, [MEL] * 5, "x", [MEL, MEL, MEL, 5]])),
        with_("palette", dict(m, corners=[MEL] * 4), "size", st.sampled_from([1, 9, [2, 9], [0, 2], "4", 2.5, [2]])),
        with_("hello", {}, "reply_port", st.sampled_from([0, 65536, -5, "9000", 1.5])),
        with_("hello", {}, "scope", st.sampled_from(["world", 1])),
        with_("transport", {"beat": 0}, "tempo", st.sampled_from([0, -1, 1e6, "fast", None, 1e999])),
        with_("transport", {"tempo": 120}, "beat", st.sampled_from(["x", None, [], 1e999])),
        with_("transport", {"tempo": 120, "beat": 0}, "numerator", st.sampled_from([3, 7, 0, 4.5, "4"])),
        with_("transport", {"tempo": 120, "beat": 0}, "playing", st.sampled_from(["yes", 2, []])),
        with_("morph", dict(m, a=MEL, b=MEL), "steps", st.sampled_from([1, 65, "x"])),
        with_("knob", dict(m, direction=0), "value", st.sampled_from([2, -1.5, "x", None, 1e999])),
        with_("stop", {}, "morph", st.sampled_from(["x", -1, 1.5])),
        with_("directions", {}, "model", st.sampled_from(["nope", 1])),
        with_("accompany", {"notes": MEL}, "model", st.sampled_from(["mel_2bar", "nope"])),
    )


@FUZZ
@given(case=_field_cases(), rid=INT32)
def test_bad_fields_get_an_error(raw, case, rid):
    op, fields = case
    _check_one(raw, rid, request(op, rid, fields))


json_level = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=200)
      .filter(lambda s: not _is_object(s)),                                        # not JSON, or not an object
    st.sampled_from(["NaN", "[NaN]", '{"model": "mel_2bar", "temperature": NaN}', '{"echo": Infinity}',
                     '{"n": -Infinity}', '{"a": 1', "{'a': 1}", '{"a": 1}}', "[]", "1", "null"]),
    st.integers(1000, 20000).map(lambda d: '{"model": ' + "[" * d + "]" * d + "}"),   # deep nesting
    st.integers(1000, 9000).map(lambda d: '{"echo": ' + '{"a":' * d + "1" + "}" * d + "}"),
)


def _is_object(s: str) -> bool:
    try:
        return isinstance(json.loads(s), dict)
    except (ValueError, RecursionError):
        return False


@FUZZ
@given(op=st.sampled_from(ALL_OPS), text=json_level, rid=INT32)
def test_bad_json_gets_bad_request(raw, op, text, rid):
    _check_one(raw, rid, request(op, rid, text), {"bad_request"})


wrong_args = st.one_of(
    st.tuples(st.sampled_from([(3, "i"), (1.5, "f"), (2.0, "d"), (b"{}", "b"), (True, "T"), (False, "F"),
                               (None, "N"), (2 ** 40, "h")])).map(list),
    st.just([("{}", "s"), ("{}", "s")]),
    st.just([("{}", "s"), (1, "i")]),
)


@FUZZ
@given(op=st.sampled_from(ALL_OPS), rid=INT32,
       payload=st.sampled_from([b"\xff\xfe{}", b'{"model": "\xed\xa0\x80"}', b'{"echo": "\xc3"}', b"\x80" * 40]))
def test_invalid_utf8_gets_bad_request(raw, op, rid, payload):
    _check_one(raw, rid, request_bytes(op, rid, payload), {"bad_request"})


@FUZZ
@given(op=st.sampled_from(ALL_OPS), rest=wrong_args, rid=INT32)
def test_wrong_type_tags_get_bad_request(raw, op, rest, rid):
    _check_one(raw, rid, osc(f"/bridge/{op}", rid, *rest), {"bad_request"})


@FUZZ
@given(rid=INT32, size=st.integers(60001, 65400), where=st.sampled_from(["model", "echo", "notes"]),
       op=st.sampled_from(["ping", "sample", "encode"]))
def test_oversized_request_is_too_large(raw, rid, size, where, op):
    pad = "x" * size
    _check_one(raw, rid, request(op, rid, {"model": "mel_2bar", where: pad}), {"too_large"})


@FUZZ
@given(rid=INT32, length=st.integers(1000, 40000), op=st.sampled_from(["sample", "encode", "directions"]))
def test_huge_model_name_is_unknown_model(raw, rid, length, op):
    _check_one(raw, rid, request(op, rid, {"model": "m" * length, "notes": MEL}), {"unknown_model"})


@FUZZ
@given(rid=INT32, name=st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s))
def test_unknown_addresses_get_unknown_op(raw, rid, name):
    address = "/bridge/" + name if not name.startswith("/") else name
    if address in ("/bridge/ok", "/bridge/seq", "/bridge/done", "/bridge/error") or address[8:] in ALL_OPS:
        address = "/nope" + address
    _check_one(raw, rid, osc(address, rid, "{}"), {"unknown_op"})


@FUZZ
@given(rids=st.lists(INT32, min_size=1, max_size=4, unique=True), nested=st.booleans(),
       case=_field_cases(huge=False))
def test_bundles_of_bad_requests_get_one_error_each(raw, rids, nested, case):
    op, fields = case
    bundle = OscBundleBuilder(IMMEDIATELY)
    inner = OscBundleBuilder(IMMEDIATELY) if nested else bundle
    for rid in rids:
        inner.add_content(OscMessage(request(op, rid, fields)))
    if nested:
        bundle.add_content(inner.build())
    raw.send(bundle.build().dgram)
    for rid in rids:
        msgs = raw.collect(rid)
        assert msgs[-1][0] == "/bridge/error" and msgs[-1][1][1] in EXPECTED_BAD, msgs
    raw.ping()


# ---- well-formed odd-but-legal requests: a terminal reply, never `internal` ---------------------------

odd_row = st.tuples(
    st.integers(0, 127),
    st.one_of(st.floats(0, 1e308, allow_nan=False), st.integers(0, 2 ** 62), st.sampled_from([7.99, 8.0, 1e300])),
    st.one_of(st.floats(1e-9, 1e308, allow_nan=False), st.sampled_from([1e-300, 1e308, 5e-324, 1])),
    st.integers(1, 127),
).map(list)


@FUZZ
@given(rows=st.lists(odd_row, max_size=40), model=st.sampled_from(["mel_2bar", "drums_2bar"]),
       op=st.sampled_from(["encode", "reconstruct", "variations"]), rid=INT32)
def test_odd_notes_never_cause_internal_errors(raw, rows, model, op, rid):
    raw.send(request(op, rid, {"model": model, "notes": rows, "n": 1, "seed": 1}))
    msgs = raw.collect(rid)
    address, args = msgs[-1]
    assert address in ("/bridge/ok", "/bridge/done") or args[1] in ("bad_request",), (rows, msgs)
    raw.ping()


@FUZZ
@given(rid=INT32, temperature=st.floats(0, 10), seed=st.integers(0, 2 ** 63 - 1),
       n=st.integers(1, 32), z=st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=4, max_size=4).filter(lambda v: all(abs(x) < 3.4e38 for x in v)))
def test_extreme_but_legal_numbers(raw, rid, temperature, seed, n, z):
    raw.send(request("sample", rid, {"model": "mel_2bar", "n": n, "temperature": temperature, "seed": seed}))
    assert raw.collect(rid)[-1][0] == "/bridge/done"
    raw.send(request("decode", rid, {"model": "drums_2bar", "z": z, "temperature": temperature, "seed": seed}))
    msgs = raw.collect(rid)
    assert msgs[-1][0] == "/bridge/done", (z, msgs)
    for _, args in msgs[:-1]:
        for row in json.loads(args[3])["notes"]:
            assert 0 <= row[0] <= 127 and math.isfinite(row[1]) and row[2] > 0
