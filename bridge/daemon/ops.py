"""The core ops of protocol 1.0 (docs/osc-protocol.md) and the `accompany` op.

Handlers are marked with `registry.op` and collected by `OpRegistry.include(bridge.daemon.ops)`;
`core_registry()` is a registry holding them, what a BridgeServer serves when given no other.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from ..core import latent
from ..core.directions import direction_names
from ..core.errors import BadRequest, TooLarge
from ..core.version import __version__
from ..runtime.accompany import melody_bars, melody_of
from . import palette_ops
from .palette_ops import palette_spread, requested_palette
from .protocol import PROTOCOL_VERSION
from .registry import OpRegistry, Sequences, encode_notes, is_int, op, z_to_list
from .scales import request_mask


def core_registry() -> OpRegistry:
    """A new OpRegistry with the ops of this module and the palette ops."""
    return OpRegistry().include(sys.modules[__name__], palette_ops)


def model_summary(model) -> dict:
    """What `models` says about a loaded model."""
    info = model.info
    return {
        "name": model.name,
        "kind": info.get("kind"),
        "bars": info.get("bars"),
        "steps_per_bar": info.get("steps_per_bar"),
        "num_steps": model.num_steps,
        "z_size": model.z_size,
        "hierarchical": info.get("hierarchical"),
        "tracks": [{k: t[k] for k in ("name", "codec", "min_pitch", "max_pitch", "program") if k in t}
                   for t in info.get("tracks", [])],
        "attributes": direction_names(info),
        "sampler": None if model.sampler is None else model.sampler.name,
        # where `sample` draws z: null for N(0, I), else the fitted prior's number of components
        "prior_components": None if model.prior is None else model.prior.components,
    }


def decode(model, z: np.ndarray, temperature: float, seed: int | None, mask=None) -> list:
    """model.decode on float32 z (`mask`: the logit mask of the request's scale, or None)."""
    return model.decode(np.asarray(z, dtype=np.float32), temperature=temperature, seed=seed, mask=mask)


def remember(session, model, z) -> None:
    """Keep z as the session's latent for `model` (what the live knobs move)."""
    session.latent[model.name] = np.array(z, dtype=np.float32).reshape(-1)


# ---- service -------------------------------------------------------------------------------------

@op("ping")
def op_ping(session, request):
    """ping {echo?} -> {pong, time, echo?}"""
    out = {"pong": True, "time": time.time()}
    if "echo" in request.fields:
        out["echo"] = request.fields["echo"]
    return out


@op("hello")
def op_hello(session, request):
    """hello {reply_port?, notes_format?} -> {challenge} (sent to the reply port); hello {reply_port?,
    challenge, notes_format?} -> session, protocol, version, reply address, models, ops, limits,
    notes_format, typed (the handshake:
    BridgeServer.hello, docs/osc-protocol.md "Where replies go")"""
    bound = request.server.hello(session, request)
    if bound is None:
        return None                       # the challenge went out
    host, rport = session.reply_address[:2]
    return {
        "protocol": PROTOCOL_VERSION,
        "server": "latent-bridge",
        "version": __version__,
        "session": bound["session"],
        "reply_to": f"{host}:{rport}",
        "models": sorted(request.server.models),
        "ops": request.server.ops.names(),
        "limits": request.limits.to_dict(),
        "notes_format": bound.get("notes_format", "json"),   # protocol 1.2: how /bridge/seq carries notes
        "typed": bound.get("typed", []),                      # ops that take the typed form (bridge.daemon.typed)
    }


@op("models")
def op_models(session, request):
    """models {} -> {models: [summary...], failed: [{source: package directory name, error}]}"""
    server = request.server
    return {"models": [model_summary(server.models[n]) for n in sorted(server.models)],
            "failed": list(server.failed_models)}


@op("stats")
def op_stats(session, request):
    """stats {} -> the daemon's counters and latencies"""
    return request.server.stats_snapshot()


# ---- the model ops ------------------------------------------------------------------------------

@op("sample")
def op_sample(session, request):
    """sample {model, n?, temperature?, seed?, scale?, palette?, spread?} -> n sequences from the prior,
    or from the named palette"""
    model = request.model()
    n = request.integer("n", 1, 1, request.limits.max_n, over=TooLarge)
    temperature = request.temperature(0.5)
    seed = request.seed()
    mask = request_mask(request, model)
    palette = requested_palette(request, model)
    if palette is None:                     # the package's sampler when it ships one (a low-KL pair)
        return Sequences(model, model.sample(n, temperature=temperature, seed=seed, mask=mask))
    rng = np.random.default_rng(seed)
    z = palette.sample(n, palette_spread(request), rng)
    return Sequences(model, model.decode(z, temperature, rng, mask=mask))


@op("encode")
def op_encode(session, request):
    """encode {model, notes} -> {model, z}; z becomes the session's latent for the model"""
    model = request.model()
    notes = request.notes(model)
    z = encode_notes(model, [notes])[0]
    remember(session, model, z)
    return {"model": model.name, "z": z_to_list(z)}


@op("decode")
def op_decode(session, request):
    """decode {model, z (one vector or a list), temperature?, seed?, scale?} -> one sequence per z"""
    model = request.model()
    z = request.z(model, batch=True)
    temperature = request.temperature(0.0)
    seed = request.seed()
    mask = request_mask(request, model)
    remember(session, model, z[-1])
    return Sequences(model, decode(model, z, temperature, seed, mask))


@op("reconstruct")
def op_reconstruct(session, request):
    """reconstruct {model, notes, temperature?, seed?} -> decode(encode(notes))"""
    model = request.model()
    notes = request.notes(model)
    temperature = request.temperature(0.0)
    seed = request.seed()
    mask = request_mask(request, model)
    z = encode_notes(model, [notes])
    remember(session, model, z[0])
    return Sequences(model, decode(model, z, temperature, seed, mask))


@op("interpolate")
def op_interpolate(session, request):
    """interpolate {model, a, b, steps?, method?, temperature?, seed?} -> `steps` sequences with `t`"""
    model = request.model()
    a = request.notes(model, "a")
    b = request.notes(model, "b")
    steps = request.integer("steps", 8, 2, request.limits.max_steps, over=TooLarge)
    temperature = request.temperature(0.0)
    seed = request.seed()
    method = request.string("method", "slerp", ("slerp", "lerp"))
    mask = request_mask(request, model)
    za, zb = encode_notes(model, [a, b])
    path = latent.interpolate(za, zb, steps, method)
    seqs = decode(model, path, temperature, seed, mask)
    extras = [{"t": round(float(t), 6)} for t in np.linspace(0.0, 1.0, steps)]
    return Sequences(model, seqs, extras)


@op("attribute")
def op_attribute(session, request):
    """attribute {model, notes | z, attribute, amount?, temperature?, seed?} -> the moved sequence"""
    model = request.model()
    if request.has("z"):
        z = request.z(model)
    elif request.has("notes"):
        z = encode_notes(model, [request.notes(model)])[0]
    else:
        raise BadRequest("give 'notes' or 'z'")
    name = request.string("attribute")
    model.attribute_vector(name)          # an unknown name: DirectionError, bad_request
    amount = request.number("amount", 1.0, -request.limits.max_amount, request.limits.max_amount)
    temperature = request.temperature(0.0)
    seed = request.seed()
    mask = request_mask(request, model)
    z2 = np.asarray(model.attribute(z, name, amount), dtype=np.float32).reshape(1, -1)
    remember(session, model, z2[0])
    return Sequences(model, decode(model, z2, temperature, seed, mask), [{"attribute": name, "amount": amount}])


@op("palette")
def op_palette(session, request):
    """palette {model, corners (4 note lists) | palette (a palette's name), size?, spread?, temperature?,
    seed?} -> rows x cols sequences between the corners (from a named palette: four draws of it)"""
    model = request.model()
    mine = requested_palette(request, model)
    corners = request.fields.get("corners")
    if mine is None and (not isinstance(corners, list) or len(corners) != 4):
        raise BadRequest("'corners' must be a list of 4 note lists: top-left, top-right, bottom-left, "
                         "bottom-right (or name a 'palette' to draw them from)")
    lists = [] if mine is not None else [request.notes(model, f"corners[{i}]", c) for i, c in enumerate(corners)]
    size = request.fields.get("size", 4)
    if is_int(size):
        rows = cols = size
    elif isinstance(size, list) and len(size) == 2 and all(is_int(s) for s in size):
        rows, cols = size
    else:
        raise BadRequest(f"'size' must be an integer or [rows, cols], got {size!r}")
    if rows < 2 or cols < 2:
        raise BadRequest(f"a palette is at least 2x2, got {rows}x{cols}")
    if rows > request.limits.max_palette or cols > request.limits.max_palette:
        raise TooLarge(f"a palette is at most {request.limits.max_palette} per side, got {rows}x{cols}")
    temperature = request.temperature(0.0)
    seed = request.seed()
    mask = request_mask(request, model)
    if mine is None:
        zs = encode_notes(model, lists)
    else:                                   # the seed draws the corners; the decode takes seed + 1
        zs = mine.sample(4, palette_spread(request), np.random.default_rng(seed))
        seed = None if seed is None else (seed + 1) % (2 ** 63)
    grid = latent.palette(zs, (rows, cols))
    seqs = decode(model, grid, temperature, seed, mask)
    extras = [{"row": i // cols, "col": i % cols} for i in range(rows * cols)]
    return Sequences(model, seqs, extras)


@op("variations")
def op_variations(session, request):
    """variations {model, notes, n?, spread?, temperature?, seed?, palette?} -> n sequences around the
    notes (with a palette: moved the way the palette's own material varies)"""
    model = request.model()
    notes = request.notes(model)
    n = request.integer("n", 4, 1, request.limits.max_n, over=TooLarge)
    spread = request.number("spread", 0.5, 0.0, request.limits.max_spread)
    seed = request.seed()
    temperature = request.temperature(0.0)
    mask = request_mask(request, model)
    palette = requested_palette(request, model)
    z = encode_notes(model, [notes])[0]
    remember(session, model, z)
    if palette is None:
        zs = latent.variations(z, n, spread, rng=seed)
    else:                                   # the palette's deviations from its mean, around the notes
        zs = (z + palette.sample(n, spread, np.random.default_rng(seed)) - palette.mean).astype(np.float32)
    # the decode seed is derived from the request seed so one seed reproduces the whole answer
    dseed = None if seed is None else (seed + 1) % (2 ** 63)
    return Sequences(model, decode(model, zs, temperature, dseed, mask))


@op("accompany")
def op_accompany(session, request):
    """accompany {model, notes, temperature?, seed?, time_signature?, scale?} -> one /bridge/seq with the
    trio (track 0 = the input melody, 1 = bass, 2 = drums), `bars` = the melody's bars, then done."""
    model = request.model()
    if model.kind != "trio":
        raise BadRequest(f"model {model.name!r} is a {model.kind} model; accompany needs a trio model")
    notes = request.notes(model)
    temperature = request.temperature(0.0)
    seed = request.seed()
    ts = request.int_pair("time_signature", None, 1, 64)
    mask = request_mask(request, model)     # keeps the bass in the scale; the melody is the input's
    # ModelError (no surrogate) and InvalidInput (a bad melody) are bad_request
    band = model.accompany(notes, temperature=temperature, seed=seed, time_signature=ts, mask=mask)
    return Sequences(model, [band], [{"bars": melody_bars(melody_of(notes)), "tracks": ["melody", "bass", "drums"]}])
