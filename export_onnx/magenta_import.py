"""Import a magenta.js MusicVAE checkpoint into a latent-bridge model package.

    python -m export_onnx import-magenta CHECKPOINT_DIR --out my_models/NAME

Three steps, one module each:
- export_onnx.magenta_weights reads the checkpoint directory: `config.json` (a `MusicVAESpec`:
  `type: "MusicVAE"`, `dataConverter {type, args}`, `useBooleanDecoder`, optional `chordEncoder`,
  `conditionOnKey`, `extraControls`), `weights_manifest.json` (a tfjs weights manifest) and its
  shards, quantized weights dequantized exactly as tfjs does;
- export_onnx.magenta_plan reads the architecture the way magenta.js `MusicVAE.initialize()` reads
  it (the data layout from the data converter; variable names, layer counts and sizes from the
  weights), checking every shape: `plan_import` -> ImportPlan;
- this module builds the torch MusicVAE holding those weights (`build_model`) and exports it as a
  package (`import_magenta`).

How magenta.js's model maps onto ours:
- encoders: the fw and bw LSTMs as they are; hierarchical: level 0 runs on each segment (bar),
  level 1 on the sequence of level-0 encodings, then `encoder/mu`.
- decoders (one, or one per track when the converter splits tracks: TrioConverter): initial states
  tanh(dense(cond)) split c0, h0, c1, h1, ...; step input concat(previous one-hot, cond); logits =
  output projection of the top layer's h; the first input is zeros.
- conductor: input a constant zero of width 1, output (the bar embedding) = top layer h.
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
from pathlib import Path

import numpy as np

from bridge.core.codecs import DrumCodec, MelodyCodec

from .magenta_plan import (CONDUCTOR_PREFIX, CONVERTERS, DRUM_DEPTH, NUM_DRUM_CLASSES, ROLL_DEPTH,
                           SUPPORTED_CONVERTERS, UNSUPPORTED_CONVERTERS, ImportPlan, TrackSpec, bidi_prefix,
                           check_spec, decoder_prefixes, plan_import)
from .magenta_weights import CONFIG, MANIFEST, MagentaImportError, read_weights, write_checkpoint

# the importer's whole vocabulary stays importable from here (tests, export_onnx.magenta_reference)
__all__ = ["CONDUCTOR_PREFIX", "CONFIG", "CONVERTERS", "DRUM_DEPTH", "MANIFEST", "NUM_DRUM_CLASSES", "ROLL_DEPTH",
           "SUPPORTED_CONVERTERS", "UNSUPPORTED_CONVERTERS", "ImportPlan", "MagentaImportError", "TrackSpec",
           "add_parser", "bidi_prefix", "build_model", "check_spec", "decoder_prefixes", "fold_roll_input",
           "import_magenta", "load_magenta_checkpoint", "model_config", "plan_import", "read_weights", "register",
           "roll_matrix", "state_dict_for", "track_specs", "write_checkpoint"]


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
    """Reads and checks a magenta.js checkpoint directory.

    Args:
      ckpt_dir: the directory (config.json, weights_manifest.json, shards).
      name: the model's name (its config's).

    Returns:
      (the torch MusicVAE in eval mode, the ImportPlan, config.json as a dict).

    Raises:
      MagentaImportError: not a checkpoint directory, or a model the package format cannot hold
        (named), or weights missing or of the wrong shape.
    """
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
    """Imports a magenta.js checkpoint directory as a model package (`import-magenta`).

    Args:
      ckpt_dir: the magenta.js checkpoint directory.
      out_dir: the package directory to write.
      name: the model's name in model.json (default: out_dir's folder name).
      weights: "fp32" | "fp16" storage of the graphs' weights (compute is float32 either way).
      max_mb: fail when the package is larger (None: no limit).
      verify: check every graph against torch (export_onnx.export).

    Returns:
      The package's model.json; its `training` section records the source checkpoint, the data
      converter, how the encoder input and sigma were mapped and the ignored weights.

    Raises:
      MagentaImportError: as load_magenta_checkpoint.
    """
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
