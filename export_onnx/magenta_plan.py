"""What a magenta.js MusicVAE checkpoint is: its architecture, read from config.json and the weight
shapes the way magenta.js `MusicVAE.initialize()` reads it, every shape checked.

The data converter is picked once from the spec (`CONVERTERS`, as magenta.js `converterFromSpec`
does); it fixes the tracks and how the encoder and the decoders read them. Then one function per
part reads its sizes from the weights and checks them: the encoder (flat, or two hierarchical
levels), the conductor (hierarchical) and the core decoder(s). `CheckedWeights` holds the shape
rule of an LSTM cell and of a dense layer, and remembers every weight a part used: what is left
is reported as ignored (magenta.js does not use it either).

Weight names (magenta.js):
- flat encoder: `encoder/cell_0/bidirectional_rnn/{fw,bw}/multi_rnn_cell/cell_0/lstm_cell/{kernel,bias}`
  (exactly one bidirectional layer), z = `encoder/mu` dense of concat(last fw h, last bw h);
- hierarchical encoder: `encoder/hierarchical_level_{0,1}/cell_0/bidirectional_rnn/{fw,bw}/...`;
- decoders: `[core_decoder/][core_decoder_{i}/]decoder/{multi_rnn_cell/cell_{l}/lstm_cell,
  z_to_initial_state,output_projection}/{kernel,bias}`;
- conductor: `decoder/hierarchical_level_0/{cell_{l}/lstm_cell,initial_state}/{kernel,bias}`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from bridge.core.codecs import MelodyCodec
from bridge.core.notes import STEPS_PER_BAR

from .magenta_weights import MagentaImportError

NUM_DRUM_CLASSES = 9
DRUM_DEPTH = 2 ** NUM_DRUM_CLASSES
ROLL_DEPTH = NUM_DRUM_CLASSES + 1
CONDUCTOR_PREFIX = "decoder/hierarchical_level_0/"

UNSUPPORTED_CONVERTERS = {
    "GrooveConverter": "GrooveVAE (GrooveConverter: hits, velocities and offsets; a GrooveDecoder)",
    "MultitrackConverter": "multitrack performance models (MultitrackConverter: event-based tracks "
                           "with end tokens and variable-length segments)",
    "DrumRollConverter": "drum-roll output models (DrumRollConverter: a boolean / Bernoulli decoder)",
    "DrumsOneHotConverter": "DrumsOneHotConverter models (only used by MusicRNN in magenta.js)",
    "MelodyRhythmConverter": "melody-rhythm models (MelodyRhythmConverter has no note codec here)",
    "MelodyShapeConverter": "melody-shape models (MelodyShapeConverter has no note codec here)",
    "TrioRhythmConverter": "trio-rhythm models (TrioRhythmConverter has no note codec here)",
}


# ============================================================================== names (magenta.js)
def bidi_prefix(direction: str, level: int | None = None, layer: int = 0) -> str:
    """The LSTM cell of an encoder direction ("fw" | "bw"): flat (level None) or hierarchical level."""
    if level is None:
        return f"encoder/cell_{layer}/bidirectional_rnn/{direction}/multi_rnn_cell/cell_0/lstm_cell/"
    return f"encoder/hierarchical_level_{level}/cell_0/bidirectional_rnn/{direction}/multi_rnn_cell/cell_0/lstm_cell/"


def decoder_prefixes(hierarchical: bool, splits: int) -> list[str]:
    """The core decoders' prefixes: one, or one per track (`splits` of them)."""
    base = "core_decoder/" if hierarchical else ""
    if splits:
        return [f"{base}core_decoder_{i}/decoder/" for i in range(splits)]
    return [f"{base}decoder/"]


# ============================================================================== the plan
@dataclass
class TrackSpec:
    kind: str                  # melody | drums
    depth: int                 # one-hot classes (decoder side)
    min_pitch: int = 0
    max_pitch: int = 0
    name: str = ""
    program: int = 0


@dataclass
class ImportPlan:
    """Everything the importer learnt from config.json and the weight shapes."""
    converter: str
    kind: str                  # melody | drums | trio
    num_steps: int
    bars: int
    hierarchical: bool
    tracks: list[TrackSpec]
    roll_input: bool           # DrumsConverter: the encoder reads a drum roll
    z_size: int
    enc_units: int             # flat: the BiLSTM; hierarchical: level 1
    bar_enc_units: int = 0     # hierarchical: level 0
    dec_units: int = 0
    dec_layers: int = 0
    split_decoders: int = 0    # number of per-track core decoders (0 = one decoder)
    cond_units: int = 0
    cond_layers: int = 0
    has_sigma: bool = False
    ignored: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> list[int]:
        return [t.depth for t in self.tracks]

    @property
    def input_size(self) -> int:
        return sum(self.num_classes)


# ============================================================================== converters
@dataclass(frozen=True)
class Converter:
    """What a data converter fixes of the model: its tracks, and how the encoder and the decoders
    read them."""
    name: str
    kind: str                      # melody | drums | trio
    tracks: list[TrackSpec]
    roll_input: bool = False       # DrumsConverter: the encoder reads a drum roll, not the one-hot
    split_decoders: int = 0        # TrioConverter: one core decoder per track

    @property
    def encoder_depth(self) -> int:
        """The width of the encoder's input per step."""
        return ROLL_DEPTH if self.roll_input else sum(t.depth for t in self.tracks)

    def decoder_tracks(self) -> list[list[TrackSpec]]:
        """The tracks each core decoder writes, in decoder_prefixes order."""
        return [[t] for t in self.tracks] if self.split_decoders else [self.tracks]


def _melody_track(args: dict, name: str, program: int, where: str) -> TrackSpec:
    try:
        lo, hi = int(args["minPitch"]), int(args["maxPitch"])
    except (KeyError, TypeError, ValueError):
        raise MagentaImportError(f"config.json: {where} needs integer minPitch and maxPitch") from None
    MelodyCodec(lo, hi)   # validates the range
    return TrackSpec("melody", hi - lo + 3, lo, hi, name, program)


def _drum_track(args: dict, where: str) -> TrackSpec:
    if args.get("pitchClasses") is not None and len(args["pitchClasses"]) != NUM_DRUM_CLASSES:
        raise MagentaImportError(f"config.json: {where} has {len(args['pitchClasses'])} drum pitch classes; "
                                 f"the drums codec has the standard {NUM_DRUM_CLASSES}")
    return TrackSpec("drums", DRUM_DEPTH, name="drums")


def melody_converter(args: dict) -> Converter:
    return Converter("MelodyConverter", "melody", [_melody_track(args, "melody", 0, "MelodyConverter")])


def drums_converter(args: dict) -> Converter:
    return Converter("DrumsConverter", "drums", [_drum_track(args, "DrumsConverter")], roll_input=True)


def trio_converter(args: dict) -> Converter:
    for key in ("melArgs", "bassArgs", "drumsArgs"):
        if not isinstance(args.get(key), dict):
            raise MagentaImportError(f"config.json: TrioConverter needs {key}")
    tracks = [_melody_track(args["melArgs"], "lead", 0, "TrioConverter.melArgs"),
              _melody_track(args["bassArgs"], "bass", 33, "TrioConverter.bassArgs"),
              _drum_track(args["drumsArgs"], "TrioConverter.drumsArgs")]
    return Converter("TrioConverter", "trio", tracks, split_decoders=3)


# dataConverter.type -> the converter of its args (raises MagentaImportError on bad args)
CONVERTERS: dict[str, Callable[[dict], Converter]] = {
    "MelodyConverter": melody_converter,
    "DrumsConverter": drums_converter,
    "TrioConverter": trio_converter,
}
SUPPORTED_CONVERTERS = tuple(CONVERTERS)


def check_spec(spec: dict) -> None:
    """Rejects what the package format cannot express, naming it.

    Raises:
      MagentaImportError: not a MusicVAE spec, a converter other than CONVERTERS, or chord, key,
        control or boolean-decoder models.
    """
    if not isinstance(spec, dict) or spec.get("type") != "MusicVAE":
        raise MagentaImportError(f"config.json: type is {spec.get('type') if isinstance(spec, dict) else spec!r}, "
                                 "expected 'MusicVAE'")
    conv = spec.get("dataConverter") or {}
    ctype = conv.get("type")
    if ctype in UNSUPPORTED_CONVERTERS:
        raise MagentaImportError(f"unsupported model: {UNSUPPORTED_CONVERTERS[ctype]}; latent-bridge "
                                 f"imports {', '.join(SUPPORTED_CONVERTERS)} models")
    if ctype not in SUPPORTED_CONVERTERS:
        raise MagentaImportError(f"config.json: unknown dataConverter type {ctype!r}; supported: "
                                 f"{', '.join(SUPPORTED_CONVERTERS)}")
    if spec.get("chordEncoder"):
        raise MagentaImportError(f"unsupported model: chord conditioning (chordEncoder={spec['chordEncoder']!r}); "
                                 "the runtime has no chord-progression input")
    if spec.get("conditionOnKey"):
        raise MagentaImportError("unsupported model: key conditioning (conditionOnKey); the runtime has no key input")
    if spec.get("extraControls"):
        names = [c.get("name") for c in spec["extraControls"]]
        raise MagentaImportError(f"unsupported model: extra control signals {names}; the runtime has no control inputs")
    if spec.get("useBooleanDecoder"):
        raise MagentaImportError("unsupported model: a boolean (Bernoulli) decoder (useBooleanDecoder); "
                                 "the runtime decodes categorical tokens only")


def _steps(args: dict) -> tuple[int, int]:
    """(numSteps, numSegments) of the converter: whole 16-step bars; segments 0 (flat) or one per bar."""
    num_steps = args.get("numSteps")
    if not isinstance(num_steps, int) or num_steps <= 0:
        raise MagentaImportError("config.json: dataConverter.args.numSteps must be a positive integer "
                                 "(models without a fixed length cannot be imported)")
    segments = args.get("numSegments") or 0
    if num_steps % STEPS_PER_BAR:
        raise MagentaImportError(f"unsupported model: numSteps {num_steps} is not a whole number of "
                                 f"{STEPS_PER_BAR}-step bars")
    if segments and num_steps != segments * STEPS_PER_BAR:
        raise MagentaImportError(f"unsupported model: {segments} segments of {num_steps / segments:g} steps; "
                                 f"the hierarchical runtime needs one segment per {STEPS_PER_BAR}-step bar")
    return num_steps, segments


# ============================================================================== weight checks
class CheckedWeights:
    """The checkpoint's weights as the parts read them: each read checks that the weight is there
    (and its shape), and is remembered, so that what is left over can be reported as ignored."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.weights, self.used = weights, set()

    def has(self, name: str) -> bool:
        return name in self.weights

    def need(self, name: str) -> np.ndarray:
        if name not in self.weights:
            raise MagentaImportError(f"checkpoint is missing weight {name!r}")
        self.used.add(name)
        return self.weights[name]

    def expect(self, name: str, shape: tuple, what: str) -> None:
        got = tuple(self.need(name).shape)
        if got != tuple(shape):
            raise MagentaImportError(f"weight {name!r} has shape {got}, expected {tuple(shape)} ({what})")

    def lstm(self, prefix: str, inputs: int, units: int, what: str, input_note: str = "") -> None:
        """A TF LSTM cell: one kernel over [input, h] (inputs + units, 4 units) and a bias (4 units)."""
        self.expect(prefix + "kernel", (inputs + units, 4 * units), what + input_note)
        self.expect(prefix + "bias", (4 * units,), what + " bias")

    def dense(self, prefix: str, inputs: int, outputs: int, what: str) -> None:
        """A dense layer: kernel (inputs, outputs) and bias (outputs)."""
        self.expect(prefix + "kernel", (inputs, outputs), what + " dense")
        self.expect(prefix + "bias", (outputs,), what + " bias")

    def lstm_layers(self, cell_format: str) -> list[tuple[str, np.ndarray]]:
        """magenta.js getLstmLayers: (prefix, kernel) of cell_0, cell_1, ... until a kernel is missing."""
        out, l = [], 0
        while cell_format % l + "kernel" in self.weights:
            p = cell_format % l
            if p + "bias" not in self.weights:
                raise MagentaImportError(f"checkpoint has {p}kernel but no {p}bias")
            out.append((p, self.weights[p + "kernel"]))
            l += 1
        return out

    def ignored(self) -> list[str]:
        return sorted(n for n in self.weights if n not in self.used)


# ============================================================================== the parts
def _reject_unsupported_weights(weights: dict) -> None:
    """Parts the runtime has no use for, named as magenta.js names them."""
    for name in weights:
        if name.startswith("control_preprocessing/"):
            raise MagentaImportError("unsupported model: control preprocessing LSTM (control_preprocessing/...); "
                                     "the runtime has no control inputs")
        if "/nade/" in name or name.startswith("nade/"):
            raise MagentaImportError("unsupported model: NADE decoder "
                                     f"({name.rsplit('/nade/', 1)[0]}/nade/w_enc, w_dec_t); the runtime "
                                     "decodes categorical tokens only")


def _bidirectional(w: CheckedWeights, level: int | None, in_size: int) -> int:
    """The units of one bidirectional encoder layer (flat: level None) over `in_size` inputs."""
    units = None
    for d in ("fw", "bw"):
        if level is None:
            layers = w.lstm_layers(f"encoder/cell_%d/bidirectional_rnn/{d}/multi_rnn_cell/cell_0/lstm_cell/")
            if len(layers) > 1:
                raise MagentaImportError(f"unsupported model: a {len(layers)}-layer bidirectional encoder "
                                         "(magenta.js and this importer read single-layer flat encoders)")
        p = bidi_prefix(d, level)
        u = w.need(p + "kernel").shape[1] // 4
        w.lstm(p, in_size, u, f"encoder {d} LSTM", f" over {in_size} inputs")
        if units is not None and u != units:
            raise MagentaImportError(f"encoder fw and bw LSTMs differ in size ({units} vs {u})")
        units = u
    return units


class _Encoder(NamedTuple):
    units: int        # flat: the BiLSTM; hierarchical: level 1
    bar_units: int    # hierarchical: level 0 (0 when flat)
    z_size: int
    has_sigma: bool


def _encoder(w: CheckedWeights, hierarchical: bool, in_depth: int) -> _Encoder:
    if hierarchical:
        if w.has(bidi_prefix("fw", 2) + "kernel"):
            raise MagentaImportError("unsupported model: more than 2 hierarchical encoder levels")
        for lvl in (0, 1):
            if not w.has(bidi_prefix("fw", lvl) + "kernel"):
                raise MagentaImportError(f"checkpoint is missing the hierarchical encoder level {lvl} "
                                         f"({bidi_prefix('fw', lvl)}kernel)")
        bar_units = _bidirectional(w, 0, in_depth)
        units = _bidirectional(w, 1, 2 * bar_units)
    else:
        bar_units = 0
        if not w.has(bidi_prefix("fw") + "kernel"):
            raise MagentaImportError(f"checkpoint is missing the encoder ({bidi_prefix('fw')}kernel)")
        units = _bidirectional(w, None, in_depth)
    z_size = w.need("encoder/mu/kernel").shape[1]
    w.dense("encoder/mu/", 2 * units, z_size, "encoder mu")
    has_sigma = w.has("encoder/sigma/kernel")
    if has_sigma:
        w.dense("encoder/sigma/", 2 * units, z_size, "encoder sigma")
    return _Encoder(units, bar_units, z_size, has_sigma)


def _conductor(w: CheckedWeights, z_size: int) -> tuple[int, int]:
    """(units, layers) of the conductor: an LSTM over a constant zero input, started from z."""
    layers = w.lstm_layers(CONDUCTOR_PREFIX + "cell_%d/lstm_cell/")
    if not layers:
        raise MagentaImportError(f"checkpoint is missing the conductor ({CONDUCTOR_PREFIX}cell_0/lstm_cell/kernel)")
    units = layers[0][1].shape[1] // 4
    for l, (p, _) in enumerate(layers):
        w.lstm(p, 1 if l == 0 else units, units, "conductor LSTM", " (input: a constant zero of width 1)")
    w.dense(CONDUCTOR_PREFIX + "initial_state/", z_size, 2 * len(layers) * units, "conductor initial state")
    return units, len(layers)


def _decoders(w: CheckedWeights, converter: Converter, hierarchical: bool, cond_size: int) -> tuple[int, int]:
    """(units, layers) of the core decoder(s); per-track decoders must all have the same."""
    units = layers = None
    for prefix, tracks in zip(decoder_prefixes(hierarchical, converter.split_decoders), converter.decoder_tracks()):
        cells = w.lstm_layers(prefix + "multi_rnn_cell/cell_%d/lstm_cell/")
        if not cells:
            where = "per-track core decoders" if converter.split_decoders else "a decoder"
            raise MagentaImportError(f"checkpoint is missing {where}: no {prefix}multi_rnn_cell/cell_0/lstm_cell/kernel")
        u = cells[0][1].shape[1] // 4
        if units is not None and (u, len(cells)) != (units, layers):
            raise MagentaImportError(f"unsupported model: the per-track decoders differ in size "
                                     f"({layers}x{units} vs {len(cells)}x{u})")
        units, layers = u, len(cells)
        _core_decoder(w, prefix, cells, sum(t.depth for t in tracks), cond_size)
    return units, layers


def _core_decoder(w: CheckedWeights, prefix: str, cells: list, out: int, cond_size: int) -> None:
    """One core decoder writing `out` classes: its step input is [previous one-hot, cond]."""
    units = cells[0][1].shape[1] // 4
    for l, (p, k) in enumerate(cells):
        if k.shape[1] != 4 * units:
            raise MagentaImportError(f"unsupported model: decoder layers of different sizes ({p}kernel {k.shape})")
        w.lstm(p, out + cond_size if l == 0 else units, units, "decoder LSTM",
               f" layer {l}: input [previous one-hot ({out}), cond ({cond_size})]")
    w.dense(prefix + "z_to_initial_state/", cond_size, 2 * len(cells) * units, "decoder initial state")
    w.dense(prefix + "output_projection/", units, out, "decoder output projection")


def plan_import(spec: dict, weights: dict[str, np.ndarray]) -> ImportPlan:
    """Reads the architecture of a magenta.js checkpoint, checking every weight it uses.

    Args:
      spec: config.json (a MusicVAESpec).
      weights: the checkpoint's weights by name (magenta_weights.read_weights).

    Returns:
      The ImportPlan: converter, tracks, sizes of every part, and the weights left unused.

    Raises:
      MagentaImportError: naming what is unsupported, missing or of the wrong shape.
    """
    check_spec(spec)
    conv = spec["dataConverter"]
    args = dict(conv.get("args") or {})
    num_steps, segments = _steps(args)
    hierarchical = bool(segments)
    converter = CONVERTERS[conv["type"]](args)
    _reject_unsupported_weights(weights)
    w = CheckedWeights(weights)
    enc = _encoder(w, hierarchical, converter.encoder_depth)
    cond_units, cond_layers = _conductor(w, enc.z_size) if hierarchical else (0, 0)
    dec_units, dec_layers = _decoders(w, converter, hierarchical, cond_units if hierarchical else enc.z_size)
    return ImportPlan(converter=converter.name, kind=converter.kind, num_steps=num_steps,
                      bars=num_steps // STEPS_PER_BAR, hierarchical=hierarchical, tracks=converter.tracks,
                      roll_input=converter.roll_input, z_size=enc.z_size, enc_units=enc.units,
                      bar_enc_units=enc.bar_units, dec_units=dec_units, dec_layers=dec_layers,
                      split_decoders=converter.split_decoders, cond_units=cond_units, cond_layers=cond_layers,
                      has_sigma=enc.has_sigma, ignored=w.ignored())
