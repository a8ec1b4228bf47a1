"""The one resolver of attribute vectors and directions (bridge.core.directions) and the error root."""
from __future__ import annotations

import numpy as np
import pytest

from bridge.core import errors
from bridge.core.directions import direction_names, direction_table, direction_vector, resolve
from bridge.core.errors import BridgeError, DirectionError, ModelError

INFO = {
    "name": "m", "z_size": 3,
    "attributes": {"density": {"vector": [1, 0, 0], "effect": {"per_unit": {"density": 2.0}}},
                   "pitch": [0, 1, 0]},                                 # the bare-list form
    "directions": [{"name": "pc1", "kind": "pca", "vector": [0, 0, 1]},
                   {"name": "density", "kind": "attribute", "vector": [9, 9, 9]},   # shadowed by attributes
                   {"name": "broken"}],                                  # no vector: not a direction
}


def test_attributes_first_then_the_other_directions():
    assert direction_names(INFO) == ["density", "pitch", "pc1"]
    table = direction_table(INFO)
    assert table[0]["kind"] == "attribute" and table[0]["effect"] == {"per_unit": {"density": 2.0}}
    assert table[2]["kind"] == "pca"
    np.testing.assert_array_equal(direction_vector(INFO, "density"), [1, 0, 0])   # the attribute wins
    assert direction_vector(INFO, "pitch").dtype == np.float32


def test_by_name_or_index():
    assert resolve(INFO, "pc1")[0] == 2 and resolve(INFO, 1)[1]["name"] == "pitch"
    np.testing.assert_array_equal(direction_vector(INFO, 2), [0, 0, 1])


@pytest.mark.parametrize("key, needle", [("nope", "no direction 'nope'"), (3, "out of range 0..2"),
                                         (True, "a name or an index"), (1.5, "a name or an index")])
def test_unknown_directions_are_key_and_bridge_errors(key, needle):
    with pytest.raises(DirectionError, match=needle) as e:
        resolve(INFO, key)
    assert isinstance(e.value, KeyError) and e.value.code == "bad_request"
    assert needle in str(e.value)           # plain text, not KeyError's repr


def test_no_directions_and_wrong_sizes():
    with pytest.raises(DirectionError, match="ships no latent directions"):
        resolve({"name": "bare"}, 0)
    with pytest.raises(ModelError, match="z has 4"):
        direction_vector(INFO, "pc1", z_size=4)


def test_every_error_is_a_bridge_error_with_a_protocol_code():
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, Exception)]
    assert len(classes) >= 10
    for cls in classes:
        assert issubclass(cls, BridgeError) and cls.code in errors.ERROR_CODES, cls
    assert issubclass(errors.CodecError, ValueError) and issubclass(errors.MidiError, ValueError)
    assert errors.MidiError("x", "no_melody").reason == "no_melody"
