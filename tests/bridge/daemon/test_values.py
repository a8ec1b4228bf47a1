"""bridge.daemon.values: the one validation layer every request value passes through."""
from __future__ import annotations

import math

import pytest

from bridge.core.errors import BadRequest, TooLarge
from bridge.daemon import values


@pytest.mark.parametrize("text, needle", [
    ('{"temperature": 1' + "0" * 308 + "}", "'temperature': "),             # 309 digits: no OverflowError
    ('{"echo": 1e400}', "'echo': 1e400 is not a finite number"),
    ('{"echo": [1, {"a": -1E999}]}', "'echo'[1].a: -1E999"),
    ('{"time_signature": [4, 1e400]}', "'time_signature'[1]"),
    ('{"n": 18446744073709551617}', "'n'"),                                  # 2**64 + 1
    ('{"echo": ' + "[" * 985 + "]" * 985 + "}", "nested"),
    ('{"echo": ' + "[" * 40 + "]" * 40 + "}", "'echo'[0][0]"),
    ('{"echo": ' + "[" * 50000 + "]" * 50000 + "}", "nested too deep"),
    ('{"x": NaN}', "NaN is not valid JSON"),
    ("[1]", "must be an object"),
    ("{", "bad JSON"),
    ('{"a": 1' + "0" * 5000 + "}", "'a'"),                                   # past Python's digit limit
])
def test_parse_refuses_and_names_the_field(text, needle):
    with pytest.raises(BadRequest) as e:
        values.parse_object(text)
    assert needle in e.value.message and len(e.value.message) < 400


def test_parse_keeps_good_values():
    obj = values.parse_object('{"a": [1, 2.5, -0.0, 1e-400, 9223372036854775807, 18446744073709551616], '
                              '"b": {"c": [[[]]]}, "s": "x"}')
    assert obj == {"a": [1, 2.5, -0.0, 0.0, 2 ** 63 - 1, 2 ** 64], "b": {"c": [[[]]]}, "s": "x"}
    deep = '{"x": ' + "[" * 31 + "]" * 31 + "}"
    assert values.parse_object(deep)
    with pytest.raises(BadRequest, match="more than 10 JSON values"):
        values.parse_object('{"a": [1,2,3,4,5,6,7,8,9,10,11]}', max_nodes=10)


def test_typed_checks_bound_before_converting():
    assert values.integer("n", 3.0, 1, 5) == 3
    assert values.number("t", 10 ** 300) == 1e300
    for bad in (10 ** 400, 2.0 ** 60 + 0.5, float("inf"), math.nan, "3", True, None, [3]):
        with pytest.raises(BadRequest):
            values.integer("n", bad, 0, 10)
    with pytest.raises(BadRequest, match="'x' must be a finite number, got an integer of 401 digits"):
        values.number("x", 10 ** 400)
    with pytest.raises(TooLarge):
        values.integer("n", 11, 0, 10, over=TooLarge)
    with pytest.raises(BadRequest, match=r"\(0\.\.999"):
        values.number("tempo", 0, 0.0, 999.0, lo_open=True)
    assert values.int_pair("ts", [4, 4.0], 1, 64) == (4, 4)
    for bad in ("44", [4], [4, 4, 4], [4, 0], {"a": 1}, [4, 1e300]):
        with pytest.raises(BadRequest, match="ts"):
            values.int_pair("ts", bad, 1, 64)
    assert values.boolean("p", 1) is True
    with pytest.raises(BadRequest):
        values.boolean("p", 2)
    assert len(values.show("x" * 1000)) < 100
