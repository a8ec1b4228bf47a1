"""The palette ops: learn a palette from the player's clips, list, forget, export and import them
(docs/osc-protocol.md "Palettes"); and how the other ops find the palette and spread a request names.

The palettes are the daemon's (`server.palettes`, a bridge.daemon.palettes.PaletteStore), kept by
(model, name); sample, variations, palette (the pad) and morph take an optional `"palette": name`
and `"spread"` (bridge.daemon.ops, bridge.live.ops).
"""
from __future__ import annotations

from ..core.errors import BadRequest, TooLarge
from ..core.palette import Palette, PaletteError
from ..runtime.palette import check_palette, learn_palette
from .palettes import summary
from .registry import op

MAX_CLIPS = 64
DEFAULT_SPREAD = 1.0


def store(request):
    """The daemon's PaletteStore."""
    return request.server.palettes


def requested_palette(request, model) -> Palette | None:
    """The palette the request's `palette` field names for `model`, or None when it names none.

    Raises:
        BadRequest: a bad name, or no such palette for the model.
    """
    if not request.has("palette"):
        return None
    return store(request).get(model.name, request.fields["palette"])


def palette_spread(request) -> float:
    """The `spread` of a palette draw: 0 = its mean, 1 = its fitted spread (default), > 1 wider."""
    return request.number("spread", DEFAULT_SPREAD, 0.0, request.limits.max_spread)


@op("learn")
def op_learn(session, request):
    """learn {model, name, clips (>= 3 note lists), drums?, time_signature?} -> {palette, model,
    windows, directions, explained, clips, encode_ms, fit_ms, replaced}: encode every one-bar-stride
    window of the clips and fit a palette; kept by the daemon (and saved with --state-dir)."""
    model = request.model()
    name = request.string("name")
    clips = request.fields.get("clips")
    if not isinstance(clips, list):
        raise BadRequest("'clips' must be a list of note lists (at least 3 clips)")
    if len(clips) > MAX_CLIPS:
        raise TooLarge(f"at most {MAX_CLIPS} clips per palette, got {len(clips)}")
    ts = request.int_pair("time_signature", (4, 4), 1, 64)
    if tuple(ts) != (4, 4):
        raise BadRequest(f"the models are 4/4; clips in {ts[0]}/{ts[1]} cannot be cut into their bars")
    drums = request.boolean("drums", None)
    if drums is not None and drums != (model.kind == "drums"):
        raise BadRequest(f"{model.name} is a {model.kind} model and the clips are "
                         f"{'drums' if drums else 'not drums'}")
    lists = [request.notes(model, f"clips[{i}]", c) for i, c in enumerate(clips)]
    palette = learn_palette(model, lists, name)         # PaletteError: bad_request, nothing stored
    replaced = store(request).put(palette)
    return {"palette": palette.name, **summary(palette), "encode_ms": palette.info.get("encode_ms"),
            "fit_ms": palette.info.get("fit_ms"), "replaced": replaced}


@op("palettes", serial=False)
def op_palettes(session, request):
    """palettes {model?} -> {palettes: [{name, model, windows, directions, explained, clips}]}"""
    model = request.model().name if request.has("model") else None
    return {"palettes": [summary(p) for p in store(request).list(model)]}


@op("forget", serial=False)
def op_forget(session, request):
    """forget {model, name} -> {forgotten: name}"""
    model = request.model()
    name = request.string("name")
    store(request).forget(model.name, name)
    return {"forgotten": name, "model": model.name}


@op("palette_export", serial=False)
def op_palette_export(session, request):
    """palette_export {model, name} -> {palette: the palette's JSON object} (to store with a Live set)"""
    model = request.model()
    return {"palette": store(request).get(model.name, request.string("name")).to_dict()}


@op("palette_import", serial=False)
def op_palette_import(session, request):
    """palette_import {palette: an exported palette object, name?} -> {palette, model, ..., replaced}"""
    obj = request.fields.get("palette")
    if not isinstance(obj, dict):
        raise BadRequest("'palette' must be a palette object (what palette_export returns)")
    try:
        palette = Palette.from_dict(obj)
    except PaletteError as e:
        raise BadRequest(f"'palette': {e}") from None
    if request.has("name"):
        palette.name = request.string("name")
    model = request.server.models.get(palette.model)
    if model is None:
        raise BadRequest(f"the palette belongs to model {palette.model!r}, which is not loaded")
    check_palette(model, palette)                        # its z size must fit the loaded model
    replaced = store(request).put(palette)
    return {"palette": palette.name, **summary(palette), "replaced": replaced}
