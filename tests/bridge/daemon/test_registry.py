"""The op registry object, the one exception -> /bridge/error mapping, and the ClientSession
interface that both an OSC Session and the live side's HardwareClient implement."""
from __future__ import annotations

import types

import pytest

from bridge.core.errors import BadRequest, Busy, CodecError, TooLarge, UnknownModel
from bridge.daemon import ops as core_ops
from bridge.daemon import registry
from bridge.daemon.protocol import ERROR, error_reply
from bridge.daemon.registry import OpRegistry, op, on_shutdown
from bridge.daemon.server import BridgeServer
from bridge.daemon.session import ClientSession, Session
from bridge.live import ops as live_ops


def _module(**members):
    m = types.ModuleType("my_ops")
    for k, v in members.items():
        v.__module__ = "my_ops"
        setattr(m, k, v)
    return m


def test_include_takes_the_marked_handlers_and_hooks_only():
    @op("hi")
    def hi(session, request):
        return {}

    @op("later", serial=False)
    def later(session, request):
        return {}

    @on_shutdown
    def bye():
        pass

    def helper():
        pass

    reg = OpRegistry().include(_module(hi=hi, later=later, bye=bye, helper=helper))
    assert reg.names() == ["hi", "later"] and "hi" in reg and len(reg) == 2
    assert reg.get("hi").serial and not reg.get("later").serial and reg.get("nope") is None
    assert reg.shutdown_hooks() == [bye]
    reg.include(_module(hi=hi))                        # the same handler again: no conflict
    assert len(reg) == 2


def test_names_are_checked_and_never_taken_twice():
    for bad in ("Upper", "ok", "seq", "done", "error", "9lives", "", "with-dash"):
        with pytest.raises(ValueError, match="bad op name"):
            op(bad)
    reg = OpRegistry()
    reg.add("x", lambda s, r: {})
    with pytest.raises(ValueError, match="already registered"):
        reg.add("x", lambda s, r: {})
    reg.add("x", print, replace=True)
    assert reg.get("x").handler is print


def test_registries_are_objects_not_import_side_effects():
    core = core_ops.core_registry()
    assert {"ping", "hello", "encode", "accompany"} <= set(core.names()) and "morph" not in core
    assert core_ops.core_registry().names() == core.names()     # a fresh one each time, nothing global
    both = OpRegistry().include(core_ops, live_ops)
    assert {"transport", "morph", "stop", "knob", "directions"} <= set(both.names())
    assert live_ops.close_midi in both.shutdown_hooks()
    assert BridgeServer({}, both).ops is both and BridgeServer({}).ops.names() == core.names()
    assert not hasattr(registry, "_registry")


def test_one_place_maps_exceptions_to_error_replies():
    assert error_reply(BadRequest("why")) == ("bad_request", "why")
    assert error_reply(CodecError("pitch 3 outside")) == ("bad_request", "pitch 3 outside")
    assert error_reply(UnknownModel("no model 'x'")) == ("unknown_model", "no model 'x'")
    assert error_reply(TooLarge("big"))[0] == "too_large" and error_reply(Busy("full"))[0] == "busy"
    assert error_reply(RuntimeError("kaboom")) == ("internal", "RuntimeError: kaboom")
    assert error_reply(RuntimeError("x"), "knob decode failed") == ("internal", "knob decode failed: x")
    assert len(error_reply(BadRequest("y" * 5000))[1]) == 2000


class _Host:
    class stats:
        errors = []

        @classmethod
        def count_error(cls, code):
            cls.errors.append(code)

    def __init__(self):
        self.sent = []

    def reply_address(self, session):
        return session.key

    def send_datagram(self, data, address):
        self.sent.append(data)
        return True


def test_session_and_hardware_client_implement_one_interface():
    host = _Host()
    s = Session(host, ("127.0.0.1", 5))
    hw = live_ops.HardwareClient()
    for client in (s, hw):
        assert isinstance(client, ClientSession)
        assert isinstance(client.latent, dict) and isinstance(client.state, dict) and client.label
        client.on_close(lambda _: None)
        assert client.fail(7, TooLarge("big")) == "too_large"
        client.ok(7, {"a": 1})
        client.sequences(7, "m", 2, [[[60, 0.0, 1.0, 100, 0]]])
    assert host.stats.errors == ["too_large"]
    assert host.sent[0].startswith(ERROR.encode()) and len(host.sent) == 4    # error, ok, seq, done
    with pytest.raises(TypeError):
        type("Half", (ClientSession,), {"on_close": lambda self, fn: None})()   # send is abstract


def test_latents_go_out_as_the_shortest_decimals_that_read_back():
    """z_to_list: each float32 as the shortest decimal that reads back to the same float32 (what
    `str` of a numpy float32 prints), so a client's JSON carries 0.1, not 0.10000000149011612;
    non-finite values become 0."""
    import numpy as np
    from bridge.daemon.registry import z_to_list
    rng = np.random.default_rng(0)
    z = (rng.standard_normal(512) * 10.0 ** rng.integers(-8, 8, 512)).astype(np.float32)
    z[:4] = [np.inf, np.nan, -np.inf, 0.1]
    got = z_to_list(z)
    assert got[:4] == [0.0, 0.0, 0.0, 0.1] and all(type(v) is float for v in got)
    assert got[4:] == [float(str(np.float32(v))) for v in z[4:]]
    assert (np.asarray(got[4:], dtype=np.float32) == z[4:]).all()
    assert z_to_list(np.float32([[1.5, 2.25]])) == [1.5, 2.25]
