"""Import a magenta.js MusicVAE checkpoint into a latent-bridge model package.

    python -m export_onnx import-magenta CHECKPOINT_DIR --out my_models/NAME

A magenta.js checkpoint directory holds `config.json` (a `MusicVAESpec`: `type: "MusicVAE"`,
`dataConverter {type, args}`, `useBooleanDecoder`, optional `chordEncoder`, `conditionOnKey`,
`extraControls`), `weights_manifest.json` (a tfjs weights manifest: a list of groups
`{paths: [shard files], weights: [{name, shape, dtype, quantization?}]}`) and the binary shards.
Within a group the shards are concatenated and the weights laid end to end in manifest order;
a quantized weight is stored as `quantization.dtype` (uint8 / uint16: value = q * scale + min;
float16: IEEE half) and dequantized to float32 exactly as tfjs does.

The architecture is read the way magenta.js `MusicVAE.initialize()` reads it (variable names,
layer counts and sizes come from the weights; the data layout from the data converter):

- flat encoder: `encoder/cell_0/bidirectional_rnn/{fw,bw}/multi_rnn_cell/cell_0/lstm_cell/{kernel,bias}`
  (exactly one bidirectional layer), z = `encoder/mu` dense of concat(last fw h, last bw h).
- hierarchical encoder (converter has `numSegments`):
  `encoder/hierarchical_level_{0,1}/cell_0/bidirectional_rnn/{fw,bw}/...`: level 0 runs on each
  segment, level 1 on the sequence of level-0 encodings, then `encoder/mu`.
- decoders: `[core_decoder/][core_decoder_{i}/]decoder/{multi_rnn_cell/cell_{l}/lstm_cell,
  z_to_initial_state,output_projection}/{kernel,bias}` (`core_decoder/` when hierarchical,
  `core_decoder_{i}/` per track when the converter splits tracks: TrioConverter). Initial states
  tanh(dense(cond)) split c0, h0, c1, h1, ...; step input concat(previous one-hot, cond); logits =
  output projection of the top layer's h; the first input is zeros.
- conductor: `decoder/hierarchical_level_0/{cell_{l}/lstm_cell,initial_state}/{kernel,bias}`, input
  a constant zero of width 1, output (the bar embedding) = top layer h.
- DrumsConverter encodes its *input* as a drum roll (9 hit columns + a "no hit" column), while the
  decoder reads and writes the 512-class one-hot. Our encoders take the one-hot, so the roll is
  folded into the first encoder kernel: roll = onehot @ R with R (512, 10) fixed, hence
  [roll, h] @ K == [onehot, h] @ [[R @ K_x], [K_h]] exactly.
- magenta.js computes only mu. If the checkpoint has no `encoder/sigma`, the package's sigma is the
  prior's (1.0): kernel 0, bias softplus^-1(1).

A trio whose decoder is *flat* but split per track (`core_decoder_{i}/decoder/...`, as magenta.js
loads TrioConverter checkpoints) is built with `SplitFlatDecoder` below: the same export interface
as the model's decoders, state rows stacked per track as the hierarchical trio does.

Not supported (a clear `MagentaImportError` names what is missing): NADE drum decoders, boolean
(drum-roll) decoders, chord / key / extra-control conditioning (including control preprocessing
LSTMs), GrooveConverter, MultitrackConverter, the rhythm / shape converters, multi-layer flat
encoders, segments that are not 16-step bars, and unequal layer sizes within a decoder.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bridge.core.codecs import DrumCodec, MelodyCodec
from bridge.core.notes import STEPS_PER_BAR

MANIFEST = "weights_manifest.json"
CONFIG = "config.json"
NUM_DRUM_CLASSES = 9
DRUM_DEPTH = 2 ** NUM_DRUM_CLASSES
ROLL_DEPTH = NUM_DRUM_CLASSES + 1

SUPPORTED_CONVERTERS = ("MelodyConverter", "DrumsConverter", "TrioConverter")
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

_TFJS_DTYPE_BYTES = {"float32": 4, "int32": 4, "bool": 1, "uint8": 1, "uint16": 2, "float16": 2}
_NP_DTYPE = {"float32": "<f4", "int32": "<i4", "bool": "u1", "uint8": "u1", "uint16": "<u2", "float16": "<f2"}


class MagentaImportError(ValueError):
    """A checkpoint this importer cannot read or this project's model cannot represent."""


# ============================================================================== weights manifest
def read_weights(ckpt_dir) -> dict[str, np.ndarray]:
    """All weights of a tfjs weights manifest as float32 / int32 numpy arrays, by name."""
    ckpt_dir = Path(ckpt_dir)
    path = ckpt_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise MagentaImportError(f"{ckpt_dir}: no {MANIFEST} (not a magenta.js checkpoint directory)") from None
    except json.JSONDecodeError as e:
        raise MagentaImportError(f"{path}: not valid JSON ({e})") from None
    if isinstance(manifest, dict) and "weightsManifest" in manifest:   # a tfjs model.json
        manifest = manifest["weightsManifest"]
    if not isinstance(manifest, list):
        raise MagentaImportError(f"{path}: expected a list of weight groups")
    out: dict[str, np.ndarray] = {}
    for g, group in enumerate(manifest):
        if not isinstance(group, dict) or "paths" not in group or "weights" not in group:
            raise MagentaImportError(f"{path}: group {g} needs 'paths' and 'weights'")
        chunks = []
        for p in group["paths"]:
            shard = ckpt_dir / p
            if not shard.is_file():
                raise MagentaImportError(f"{path}: shard {p!r} of group {g} is missing")
            chunks.append(shard.read_bytes())
        buf = b"".join(chunks)
        offset = 0
        for spec in group["weights"]:
            name, shape, dtype = spec["name"], [int(d) for d in spec["shape"]], spec.get("dtype", "float32")
            size = int(np.prod(shape, dtype=np.int64)) if shape else 1
            q = spec.get("quantization")
            raw_dtype = q["dtype"] if q else dtype
            if raw_dtype not in _TFJS_DTYPE_BYTES:
                raise MagentaImportError(f"{path}: weight {name!r} has unsupported dtype {raw_dtype!r}")
            nbytes = size * _TFJS_DTYPE_BYTES[raw_dtype]
            if offset + nbytes > len(buf):
                raise MagentaImportError(f"{path}: the shards of group {g} end inside weight {name!r} "
                                         f"({len(buf)} bytes, need {offset + nbytes})")
            raw = np.frombuffer(buf, dtype=_NP_DTYPE[raw_dtype], count=size, offset=offset)
            offset += nbytes
            out[name] = _dequantize(name, raw, dtype, q).reshape(shape)
        if offset != len(buf):
            raise MagentaImportError(f"{path}: group {g} has {len(buf) - offset} bytes after its last weight")
    return out


def _dequantize(name: str, raw: np.ndarray, dtype: str, q: dict | None) -> np.ndarray:
    if q is None:
        if dtype == "float32":
            return raw.astype(np.float32)
        if dtype in ("int32", "bool"):
            return raw.astype(np.int32)
        raise MagentaImportError(f"weight {name!r}: unsupported dtype {dtype!r}")
    qd = q["dtype"]
    if qd in ("uint8", "uint16"):
        if "min" not in q or "scale" not in q:
            raise MagentaImportError(f"weight {name!r}: {qd} quantization without 'min' and 'scale'")
        # tfjs: values[i] = q * scale + min in double precision, stored as float32
        v = raw.astype(np.float64) * float(q["scale"]) + float(q["min"])
        return np.round(v).astype(np.int32) if dtype == "int32" else v.astype(np.float32)
    if qd == "float16":
        if dtype != "float32":
            raise MagentaImportError(f"weight {name!r}: float16 quantization of a {dtype} weight")
        return raw.astype(np.float32)
    raise MagentaImportError(f"weight {name!r}: unknown quantization dtype {qd!r} "
                             "(tfjs supports uint8, uint16 and float16)")


def write_checkpoint(ckpt_dir, config: dict, weights: dict[str, np.ndarray], quantize: str | None = None,
                     shard_bytes: int = 4 << 20) -> Path:
    """Write a magenta.js checkpoint directory (config.json, weights_manifest.json, shards).

    `quantize`: None (float32), "uint8" / "uint16" (affine, tfjs `{min, scale, dtype}`) or "float16".
    The inverse of `read_weights`; used to build test checkpoints.
    """
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    entries, blobs = [], []
    for name, arr in weights.items():
        arr = np.asarray(arr, dtype=np.float32)
        entry = {"name": name, "shape": list(arr.shape), "dtype": "float32"}
        if quantize in ("uint8", "uint16"):
            levels = 255 if quantize == "uint8" else 65535
            lo, hi = float(arr.min()), float(arr.max())
            scale = (hi - lo) / levels if hi > lo else 1.0
            qv = np.clip(np.round((arr.astype(np.float64) - lo) / scale), 0, levels)
            blobs.append(qv.astype(_NP_DTYPE[quantize]).tobytes())
            entry["quantization"] = {"min": lo, "scale": scale, "dtype": quantize}
        elif quantize == "float16":
            blobs.append(arr.astype("<f2").tobytes())
            entry["quantization"] = {"dtype": "float16"}
        elif quantize is None:
            blobs.append(arr.astype("<f4").tobytes())
        else:
            raise ValueError(f"unknown quantization {quantize!r}")
        entries.append(entry)
    data = b"".join(blobs)
    n = max(1, math.ceil(len(data) / shard_bytes))
    paths = []
    for i in range(n):
        fname = f"group1-shard{i + 1}of{n}"
        (ckpt_dir / fname).write_bytes(data[i * shard_bytes:(i + 1) * shard_bytes])
        paths.append(fname)
    (ckpt_dir / MANIFEST).write_text(json.dumps([{"paths": paths, "weights": entries}]))
    (ckpt_dir / CONFIG).write_text(json.dumps(config, indent=1))
    return ckpt_dir


# ============================================================================== names (magenta.js)
def bidi_prefix(direction: str, level: int | None = None, layer: int = 0) -> str:
    if level is None:
        return f"encoder/cell_{layer}/bidirectional_rnn/{direction}/multi_rnn_cell/cell_0/lstm_cell/"
    return f"encoder/hierarchical_level_{level}/cell_0/bidirectional_rnn/{direction}/multi_rnn_cell/cell_0/lstm_cell/"


def decoder_prefixes(hierarchical: bool, splits: int) -> list[str]:
    base = "core_decoder/" if hierarchical else ""
    if splits:
        return [f"{base}core_decoder_{i}/decoder/" for i in range(splits)]
    return [f"{base}decoder/"]


CONDUCTOR_PREFIX = "decoder/hierarchical_level_0/"


def _lstm_layers(weights: dict, cell_format: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """magenta.js getLstmLayers: cell_0, cell_1, ... until a kernel is missing."""
    out, l = [], 0
    while cell_format % l + "kernel" in weights:
        p = cell_format % l
        if p + "bias" not in weights:
            raise MagentaImportError(f"checkpoint has {p}kernel but no {p}bias")
        out.append((p, weights[p + "kernel"], weights[p + "bias"]))
        l += 1
    return out


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


def check_spec(spec: dict) -> None:
    """Reject what the package format cannot express, naming it."""
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


def plan_import(spec: dict, weights: dict[str, np.ndarray]) -> ImportPlan:
    """Read the architecture from config.json and the weight shapes, checking every shape."""
    check_spec(spec)
    conv = spec["dataConverter"]
    ctype, args = conv["type"], dict(conv.get("args") or {})
    num_steps = args.get("numSteps")
    if not isinstance(num_steps, int) or num_steps <= 0:
        raise MagentaImportError("config.json: dataConverter.args.numSteps must be a positive integer "
                                 "(models without a fixed length cannot be imported)")
    segments = args.get("numSegments") or 0
    hierarchical = bool(segments)
    if num_steps % STEPS_PER_BAR:
        raise MagentaImportError(f"unsupported model: numSteps {num_steps} is not a whole number of "
                                 f"{STEPS_PER_BAR}-step bars")
    bars = num_steps // STEPS_PER_BAR
    if hierarchical and num_steps != segments * STEPS_PER_BAR:
        raise MagentaImportError(f"unsupported model: {segments} segments of {num_steps / segments:g} steps; "
                                 f"the hierarchical runtime needs one segment per {STEPS_PER_BAR}-step bar")

    roll_input, splits = False, 0
    if ctype == "MelodyConverter":
        kind, tracks = "melody", [_melody_track(args, "melody", 0, "MelodyConverter")]
    elif ctype == "DrumsConverter":
        kind, tracks, roll_input = "drums", [_drum_track(args, "DrumsConverter")], True
    else:  # TrioConverter
        kind, splits = "trio", 3
        for key in ("melArgs", "bassArgs", "drumsArgs"):
            if not isinstance(args.get(key), dict):
                raise MagentaImportError(f"config.json: TrioConverter needs {key}")
        tracks = [_melody_track(args["melArgs"], "lead", 0, "TrioConverter.melArgs"),
                  _melody_track(args["bassArgs"], "bass", 33, "TrioConverter.bassArgs"),
                  _drum_track(args["drumsArgs"], "TrioConverter.drumsArgs")]

    known: set[str] = set()

    def need(name: str) -> np.ndarray:
        if name not in weights:
            raise MagentaImportError(f"checkpoint is missing weight {name!r}")
        known.add(name)
        return weights[name]

    def expect(name: str, shape: tuple, what: str):
        got = tuple(need(name).shape)
        if got != tuple(shape):
            raise MagentaImportError(f"weight {name!r} has shape {got}, expected {tuple(shape)} ({what})")

    # -- unsupported extras, named as magenta.js names them
    for name in weights:
        if name.startswith("control_preprocessing/"):
            raise MagentaImportError("unsupported model: control preprocessing LSTM (control_preprocessing/...); "
                                     "the runtime has no control inputs")
        if "/nade/" in name or name.startswith("nade/"):
            raise MagentaImportError("unsupported model: NADE decoder "
                                     f"({name.rsplit('/nade/', 1)[0]}/nade/w_enc, w_dec_t); the runtime "
                                     "decodes categorical tokens only")

    # -- encoder
    in_depth = ROLL_DEPTH if roll_input else sum(t.depth for t in tracks)

    def bidi(level: int | None, in_size: int) -> int:
        units = None
        for d in ("fw", "bw"):
            if level is None:
                layers = _lstm_layers(weights, f"encoder/cell_%d/bidirectional_rnn/{d}/multi_rnn_cell/cell_0/lstm_cell/")
                if len(layers) > 1:
                    raise MagentaImportError(f"unsupported model: a {len(layers)}-layer bidirectional encoder "
                                             "(magenta.js and this importer read single-layer flat encoders)")
            p = bidi_prefix(d, level)
            k = need(p + "kernel")
            u = k.shape[1] // 4
            expect(p + "kernel", (in_size + u, 4 * u), f"encoder {d} LSTM over {in_size} inputs")
            expect(p + "bias", (4 * u,), f"encoder {d} LSTM bias")
            if units is not None and u != units:
                raise MagentaImportError(f"encoder fw and bw LSTMs differ in size ({units} vs {u})")
            units = u
        return units

    if hierarchical:
        if bidi_prefix("fw", 2) + "kernel" in weights:
            raise MagentaImportError("unsupported model: more than 2 hierarchical encoder levels")
        for lvl in (0, 1):
            if bidi_prefix("fw", lvl) + "kernel" not in weights:
                raise MagentaImportError(f"checkpoint is missing the hierarchical encoder level {lvl} "
                                         f"({bidi_prefix('fw', lvl)}kernel)")
        bar_units = bidi(0, in_depth)
        enc_units = bidi(1, 2 * bar_units)
    else:
        bar_units = 0
        if bidi_prefix("fw") + "kernel" not in weights:
            raise MagentaImportError(f"checkpoint is missing the encoder ({bidi_prefix('fw')}kernel)")
        enc_units = bidi(None, in_depth)
    mu_k = need("encoder/mu/kernel")
    z_size = mu_k.shape[1]
    expect("encoder/mu/kernel", (2 * enc_units, z_size), "encoder mu dense")
    expect("encoder/mu/bias", (z_size,), "encoder mu bias")
    has_sigma = "encoder/sigma/kernel" in weights
    if has_sigma:
        expect("encoder/sigma/kernel", (2 * enc_units, z_size), "encoder sigma dense")
        expect("encoder/sigma/bias", (z_size,), "encoder sigma bias")

    # -- conductor
    cond_units = cond_layers = 0
    if hierarchical:
        layers = _lstm_layers(weights, CONDUCTOR_PREFIX + "cell_%d/lstm_cell/")
        if not layers:
            raise MagentaImportError(f"checkpoint is missing the conductor ({CONDUCTOR_PREFIX}cell_0/lstm_cell/kernel)")
        cond_units = layers[0][1].shape[1] // 4
        cond_layers = len(layers)
        for l, (p, _, _) in enumerate(layers):
            expect(p + "kernel", ((1 if l == 0 else cond_units) + cond_units, 4 * cond_units),
                   "conductor LSTM (input: a constant zero of width 1)")
            expect(p + "bias", (4 * cond_units,), "conductor LSTM bias")
        expect(CONDUCTOR_PREFIX + "initial_state/kernel", (z_size, 2 * cond_layers * cond_units),
               "conductor initial state dense")
        expect(CONDUCTOR_PREFIX + "initial_state/bias", (2 * cond_layers * cond_units,), "conductor initial state bias")
    cond_size = cond_units if hierarchical else z_size

    # -- core decoder(s)
    prefixes = decoder_prefixes(hierarchical, splits)
    groups = [[t] for t in tracks] if splits else [tracks]
    dec_units = dec_layers = None
    for prefix, group in zip(prefixes, groups):
        layers = _lstm_layers(weights, prefix + "multi_rnn_cell/cell_%d/lstm_cell/")
        if not layers:
            where = "per-track core decoders" if splits else "a decoder"
            raise MagentaImportError(f"checkpoint is missing {where}: no {prefix}multi_rnn_cell/cell_0/lstm_cell/kernel")
        u = layers[0][1].shape[1] // 4
        if dec_units is not None and (u, len(layers)) != (dec_units, dec_layers):
            raise MagentaImportError(f"unsupported model: the per-track decoders differ in size "
                                     f"({dec_layers}x{dec_units} vs {len(layers)}x{u})")
        dec_units, dec_layers = u, len(layers)
        out = sum(t.depth for t in group)
        for l, (p, k, _) in enumerate(layers):
            if k.shape[1] != 4 * u:
                raise MagentaImportError(f"unsupported model: decoder layers of different sizes ({p}kernel {k.shape})")
            expect(p + "kernel", ((out + cond_size if l == 0 else u) + u, 4 * u),
                   f"decoder LSTM layer {l}: input [previous one-hot ({out}), cond ({cond_size})]")
            expect(p + "bias", (4 * u,), "decoder LSTM bias")
        expect(prefix + "z_to_initial_state/kernel", (cond_size, 2 * dec_layers * u), "decoder initial state dense")
        expect(prefix + "z_to_initial_state/bias", (2 * dec_layers * u,), "decoder initial state bias")
        expect(prefix + "output_projection/kernel", (u, out), "decoder output projection")
        expect(prefix + "output_projection/bias", (out,), "decoder output projection bias")

    ignored = sorted(n for n in weights if n not in known)
    return ImportPlan(converter=ctype, kind=kind, num_steps=num_steps, bars=bars, hierarchical=hierarchical,
                      tracks=tracks, roll_input=roll_input, z_size=z_size, enc_units=enc_units,
                      bar_enc_units=bar_units, dec_units=dec_units, dec_layers=dec_layers,
                      split_decoders=splits, cond_units=cond_units, cond_layers=cond_layers,
                      has_sigma=has_sigma, ignored=ignored)


# ============================================================================== torch model
def roll_matrix() -> np.ndarray:
    """R (512, 10): the DrumsConverter input roll of each one-hot drum token (9 hit bits + "no hit")."""
    t = np.arange(DRUM_DEPTH)
    r = np.zeros((DRUM_DEPTH, ROLL_DEPTH), dtype=np.float64)
    for c in range(NUM_DRUM_CLASSES):
        r[:, c] = (t >> c) & 1
    r[:, NUM_DRUM_CLASSES] = t == 0
    return r


def fold_roll_input(kernel: np.ndarray) -> np.ndarray:
    """An LSTM kernel over [roll (10), h] -> the equivalent kernel over [one-hot (512), h]."""
    kx, kh = kernel[:ROLL_DEPTH].astype(np.float64), kernel[ROLL_DEPTH:]
    return np.concatenate([(roll_matrix() @ kx).astype(np.float32), kh.astype(np.float32)], axis=0)


def track_specs(plan: ImportPlan) -> tuple[dict, ...]:
    specs = []
    for t in plan.tracks:
        if t.kind == "melody":
            specs.append(dict(MelodyCodec(t.min_pitch, t.max_pitch, t.program).spec(), name=t.name))
        else:
            specs.append(dict(DrumCodec().spec(), name=t.name))
    return tuple(specs)


def model_config(plan: ImportPlan, name: str):
    from .configs import ModelConfig, ModelSize
    size = ModelSize(enc_units=plan.enc_units, dec_units=plan.dec_units, dec_layers=plan.dec_layers,
                     z_size=plan.z_size, cond_units=plan.cond_units, cond_layers=plan.cond_layers or 2,
                     emb_size=plan.cond_units, bar_enc_units=plan.bar_enc_units)
    config = ModelConfig(name=name, kind=plan.kind, bars=plan.bars, tracks=track_specs(plan),
                         hierarchical=plan.hierarchical, sizes={"imported": size})
    return config, size


def _split_flat_decoder_class():
    import torch
    from .model import LstmCoreDecoder, SplitCores, DecoderBase, segments, shift_right

    class SplitFlatDecoder(SplitCores, DecoderBase):
        """A flat decoder made of one core decoder per track, all conditioned on z (magenta.js
        `SplitDecoder`, e.g. a TrioConverter model without a conductor). Core k reads only its own
        track's previous one-hot; state rows stack the cores' layers ([0, L) track 0, ...), as the
        hierarchical trio does, so the export interface and the package format are unchanged."""

        hierarchical = False

        def __init__(self, num_classes: list[int], z_size: int, units: int, layers: int, num_steps: int):
            super().__init__()
            self.num_classes, self.num_steps = list(num_classes), num_steps
            self.input_size = sum(self.num_classes)
            self.cond_size, self.units, self.layers = z_size, units, layers
            self.cores = torch.nn.ModuleList([LstmCoreDecoder([n], z_size, units, layers) for n in self.num_classes])
            self.state_layers = layers * len(self.cores)
            self._core_slices = segments(self.num_classes)

        def forward(self, z, targets, sampling_probability: float = 0.0, generator=None):
            """Teacher forcing (no scheduled sampling): targets (B, steps, input) -> logits."""
            inputs = shift_right(targets)
            return torch.cat([core.teacher_forced(inputs[..., a:b], z)
                              for core, (a, b) in zip(self.cores, self._core_slices)], dim=-1)

    return SplitFlatDecoder


def state_dict_for(plan: ImportPlan, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """magenta.js weights -> the torch model's parameter names (TF layout, no transposes)."""
    sd: dict[str, np.ndarray] = {}

    def lstm(dst: str, src: str, roll: bool = False):
        k = weights[src + "kernel"]
        sd[dst + ".kernel"] = fold_roll_input(k) if roll else k
        sd[dst + ".bias"] = weights[src + "bias"]

    def dense(dst: str, src: str):
        sd[dst + ".kernel"] = weights[src + "kernel"]
        sd[dst + ".bias"] = weights[src + "bias"]

    if plan.hierarchical:
        for d in ("fw", "bw"):
            lstm(f"encoder.bar_lstm.{d}", bidi_prefix(d, 0), plan.roll_input)
            lstm(f"encoder.lstm.{d}", bidi_prefix(d, 1))
    else:
        for d in ("fw", "bw"):
            lstm(f"encoder.lstm.{d}", bidi_prefix(d), plan.roll_input)
    dense("encoder.mu", "encoder/mu/")
    if plan.has_sigma:
        dense("encoder.sigma", "encoder/sigma/")
    else:   # magenta.js has no sigma: use the prior's, softplus(log(e - 1)) = 1
        sd["encoder.sigma.kernel"] = np.zeros((2 * plan.enc_units, plan.z_size), np.float32)
        sd["encoder.sigma.bias"] = np.full(plan.z_size, math.log(math.e - 1.0), np.float32)

    prefixes = decoder_prefixes(plan.hierarchical, plan.split_decoders)
    if plan.hierarchical:
        dense("decoder.conductor_initial_state", CONDUCTOR_PREFIX + "initial_state/")
        for l in range(plan.cond_layers):
            lstm(f"decoder.conductor_lstm.cells.{l}", f"{CONDUCTOR_PREFIX}cell_{l}/lstm_cell/")
        cores = [f"decoder.cores.{k}" for k in range(len(prefixes))]
    elif plan.split_decoders:
        cores = [f"decoder.cores.{k}" for k in range(len(prefixes))]
    else:
        cores = ["decoder.core"]
    for dst, src in zip(cores, prefixes):
        dense(dst + ".z_to_initial_state", src + "z_to_initial_state/")
        for l in range(plan.dec_layers):
            lstm(f"{dst}.lstm.cells.{l}", f"{src}multi_rnn_cell/cell_{l}/lstm_cell/")
        dense(dst + ".output_projection", src + "output_projection/")
    return sd


def build_model(plan: ImportPlan, weights: dict[str, np.ndarray], name: str = "imported"):
    """The torch MusicVAE holding the checkpoint's weights (eval mode)."""
    import torch
    from .model import MusicVAE

    config, size = model_config(plan, name)
    model = MusicVAE(config, size)
    if plan.split_decoders and not plan.hierarchical:
        model.decoder = _split_flat_decoder_class()(plan.num_classes, plan.z_size, plan.dec_units,
                                                    plan.dec_layers, plan.num_steps)
    sd = state_dict_for(plan, weights)
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    if missing or unexpected:   # a bug here, not in the checkpoint: plan_import checked the names
        raise MagentaImportError(f"internal: parameters not set {missing}, not in the model {unexpected}")
    for k, v in sd.items():
        if tuple(own[k].shape) != tuple(v.shape):
            raise MagentaImportError(f"internal: {k} is {tuple(own[k].shape)} in the model, {v.shape} imported")
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in sd.items()})
    model.eval()
    return model


def load_magenta_checkpoint(ckpt_dir, name: str = "imported"):
    """Read and check a magenta.js checkpoint directory -> (torch model, plan, config.json dict)."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        raise MagentaImportError(f"{ckpt_dir} is not a directory")
    try:
        spec = json.loads((ckpt_dir / CONFIG).read_text())
    except FileNotFoundError:
        raise MagentaImportError(f"{ckpt_dir}: no {CONFIG} (not a magenta.js checkpoint directory)") from None
    except json.JSONDecodeError as e:
        raise MagentaImportError(f"{ckpt_dir / CONFIG}: not valid JSON ({e})") from None
    check_spec(spec)   # before reading megabytes of weights
    weights = read_weights(ckpt_dir)
    plan = plan_import(spec, weights)
    return build_model(plan, weights, name), plan, spec


# ============================================================================== package + CLI
def import_magenta(ckpt_dir, out_dir, name: str | None = None, weights: str = "fp32",
                   max_mb: float | None = None, verify: bool = True) -> dict:
    """A magenta.js checkpoint directory -> a model package in out_dir; returns its model.json."""
    from .export import write_package

    out_dir = Path(out_dir)
    name = name or out_dir.name
    model, plan, spec = load_magenta_checkpoint(ckpt_dir, name)
    training = {
        "source": "magenta.js checkpoint",
        "checkpoint": str(Path(ckpt_dir).resolve()),
        "magenta_config": spec,
        "data_converter": plan.converter,
        "encoder_input": "drum roll folded into the first encoder kernel" if plan.roll_input else "one-hot",
        "sigma": "imported" if plan.has_sigma else "none in the checkpoint: prior sigma 1.0",
        "split_decoders": plan.split_decoders,
        "ignored_weights": plan.ignored,
    }
    return write_package(model, out_dir, name=name, weights=weights, training=training, verify=verify,
                         max_mb=max_mb)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "import-magenta", help="import a magenta.js MusicVAE checkpoint as a model package",
        description="Read a magenta.js checkpoint directory (config.json, weights_manifest.json, shards; "
                    "quantized weights are dequantized), build the matching model and export a package.")
    p.add_argument("checkpoint", help="magenta.js checkpoint directory")
    p.add_argument("--out", required=True, help="package directory to write, e.g. my_models/mel_2bar_small")
    p.add_argument("--name", default=None, help="model name in model.json (default: the --out folder name)")
    p.add_argument("--weights", default="fp32", choices=["fp32", "fp16"],
                   help="weight storage in the .onnx files (compute is float32 either way)")
    p.add_argument("--max-mb", type=float, default=0.0, help="fail when the package is larger (0 = no limit)")
    p.set_defaults(func=_main_import)


def _main_import(args) -> int:
    try:
        info = import_magenta(args.checkpoint, args.out, name=args.name, weights=args.weights,
                              max_mb=args.max_mb or None)
    except MagentaImportError as e:
        print(f"import-magenta: {e}", file=sys.stderr)
        return 2
    tr = info["training"]
    if tr["ignored_weights"]:
        print(f"import-magenta: ignored {len(tr['ignored_weights'])} weights magenta.js does not use either: "
              f"{', '.join(tr['ignored_weights'][:8])}{' ...' if len(tr['ignored_weights']) > 8 else ''}",
              file=sys.stderr)
    print(json.dumps({"package": str(args.out), "name": info["name"], "kind": info["kind"],
                      "hierarchical": info["hierarchical"], "bars": info["bars"], "z_size": info["z_size"],
                      "graphs": list(info["graphs"]), "sigma": tr["sigma"],
                      "parity_max_abs_diff": info["export"]["parity_max_abs_diff"]}))
    return 0


add_parser = register   # the name export_onnx.__main__ calls
