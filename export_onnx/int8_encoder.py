"""The int8 encoder: `add-int8`'s second graph, behind the same kind of gate as the int8 decoder step.

Why: encoding a clip is on the path of every op that starts from the player's notes (reconstruct,
interpolate, morph endpoints, palettes, the accompaniment's surrogate aside). Its cost is the
bidirectional LSTM run one time step after the other at batch 1, a matrix-vector product per step
and direction bound by reading the recurrent weights: the shipped mel_2bar encoder (2 x 256 units,
32 steps) takes 1.75 ms in onnxruntime's LSTM kernel on one core, and the same graph unrolled into
per-step MatMuls took 2.8 ms, so the float graph is already at its floor. With 8-bit weights
(onnxruntime's DynamicQuantizeLSTM) it takes 0.55 ms.

1. **The graph.** A copy of encoder.onnx with the float16-stored weights folded back to float32
   initializers (`fold_float16_casts`: the quantiser only sees constants), then `quantize_dynamic(
   op_types_to_quantize=["LSTM"], per_channel=True, weight_type=QInt8)`: every LSTM's input and
   recurrent weights 8-bit per gate row, activations quantised per call. The mu / sigma projections
   stay float. Measured on the shipped mel_2bar (64 random one-hot windows): mu's relative L2 error
   1.4 % per channel, 3.2 % per tensor.
2. **The gate.** What changes for a musician is the notes decoded from the code, so the float
   decoder step decodes at temperature 0 (argmax) from the float encoder's posterior mean and from
   the int8 one's, on (a) the audit's held-out windows and (b) the prior model's own samples (the
   package's, or for a pair its sampler's, decoded at T = 0 from z ~ N(0, I)) encoded again, as a
   morph endpoint made from a generated clip is and as a pair's `prior_latents` are. Agreement = the
   share of equal (sequence, step, track) tokens; the lower of the two must reach the gate
   (bridge.runtime.package.INT8_MIN_AGREEMENT).
   The runtime encodes one sequence per call with an int8 encoder (bridge.runtime.engine
   `encode_tokens`): activations are quantised over the whole call, so a batched call would make a
   clip's code depend on the clips beside it (mel_2bar: up to 0.045 in z). The gate measures it the
   same way.
3. **The package.** model.json gets an `int8_encoder` section (bridge.runtime.package.int8_graph,
   INT8_GRAPHS) with the same fields as the step's `int8` section plus `mu_rel_error`; the file is
   kept only when the gate passes and the package stays within 15 MB. MODEL_CARD.md gets a
   "## int8 encoder" section.
"""
from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bridge.runtime import package as P

from .int8_gate import (agreements, decode_all, encode_all, format_se, new_entry, op_counts, package_megabytes,
                        record_agreement, settle)
from .model_card import INT8_ENCODER_HEADING

OP_TYPES = ("LSTM",)


def _log(msg: str) -> None:
    print(f"[add-int8] {msg}", file=sys.stderr, flush=True)


def fold_float16_casts(model):
    """A copy of an ONNX model in which every Cast of a float16 initializer to float32 is replaced by
    a float32 initializer of the Cast's output name (export's `to_fp16_storage`, undone)."""
    import onnx
    from onnx import numpy_helper
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    nodes, folded = [], {}
    for n in g.node:
        to = next((a.i for a in n.attribute if a.name == "to"), None) if n.op_type == "Cast" else None
        src = inits.get(n.input[0]) if n.op_type == "Cast" else None
        if src is not None and src.data_type == onnx.TensorProto.FLOAT16 and to == onnx.TensorProto.FLOAT:
            folded[n.output[0]] = numpy_helper.from_array(numpy_helper.to_array(src).astype(np.float32), n.output[0])
            continue
        nodes.append(n)
    used = {i for n in nodes for i in n.input}
    keep = [i for i in g.initializer if i.name in used] + list(folded.values())
    del g.node[:]
    g.node.extend(nodes)
    del g.initializer[:]
    g.initializer.extend(keep)
    onnx.checker.check_model(m)
    return m


def unshare_lstm_weights(model) -> int:
    """Give every LSTM node its own copy of weight initializers it shares with another LSTM (in place;
    returns the number of copies). onnxruntime's quantiser rewrites an LSTM's weights once per node,
    so a weight shared by two (the trio chain's lead and bass encoders are both mel_2bar's, tied
    through Identity nodes) reached the second node already rewritten: a graph that does not load."""
    from onnx import numpy_helper
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    # the exporter ties a reused module's weights with Identity nodes: follow them to the initializer
    identity = {n.output[0]: n.input[0] for n in g.node if n.op_type == "Identity"}
    seen, copies = set(), 0
    for n in g.node:
        if n.op_type != "LSTM":
            continue
        for k in range(1, min(4, len(n.input))):
            name = n.input[k]
            while name in identity and name not in inits:
                name = identity[name]
            if name not in inits:
                continue
            if name in seen or name != n.input[k]:
                copies += 1
                new = f"{name}__copy{copies}"
                g.initializer.append(numpy_helper.from_array(numpy_helper.to_array(inits[name]), new))
                n.input[k] = new
            else:
                seen.add(name)
    # the Identity nodes now feed nothing: drop them, or their float weights stay in the file
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    dead = [n for n in g.node if n.op_type == "Identity" and n.output[0] not in used]
    for n in dead:
        g.node.remove(n)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    for init in [i for i in g.initializer if i.name not in used]:
        g.initializer.remove(init)
    return copies


def quantize_encoder(src, dst, per_channel: bool = True) -> dict:
    """Write the int8 version of the encoder graph `src` to `dst` (see the module docstring).

    Returns:
        {lstms, lstms_quantized, ops (op type -> count in the int8 graph), bytes}.

    Raises:
        ValueError: the graph has no LSTM the quantiser could take.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = fold_float16_casts(onnx.load(str(src)))
    unshare_lstm_weights(model)
    lstms = op_counts(model).get("LSTM", 0)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)   # the quantiser's advice to pre-process (shape inference) is for CNNs
    try:
        quantize_dynamic(model, str(dst), op_types_to_quantize=list(OP_TYPES), per_channel=per_channel,
                         weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    ops = op_counts(onnx.load(str(dst)))
    quantized = ops.get("DynamicQuantizeLSTM", 0)
    if not quantized:
        raise ValueError(f"{src}: no LSTM could be quantised ({lstms} LSTMs)")
    return {"lstms": lstms, "lstms_quantized": quantized, "ops": ops, "bytes": Path(dst).stat().st_size}


def measure_encoder_agreement(package_dir, encoder_file, tokens: np.ndarray, n_prior: int = 1024,
                              prior_seed: int = 0, threads: int = 1, chunk: int = 256) -> dict:
    """Argmax agreement of decodes from the int8 encoder's code with decodes from the float one's.

    Args:
        package_dir: the package (its encoder.onnx is the reference; both decode with its float step).
        encoder_file: the candidate encoder graph.
        tokens: (N, steps, tracks) held-out windows.
        n_prior: prior samples (the prior model's, T = 0, z ~ N(0, I) from numpy default_rng(prior_seed))
            encoded again.

    Returns:
        {agreement_recon, agreement_prior, se_*, identical_*, tracks {name: {recon, prior}},
        mu_rel_error (mean over the held-out windows of |mu_int8 - mu| / |mu|), n_windows, n_prior,
        prior_seed}.
    """
    from bridge.runtime.engine import Model

    ref = Model(package_dir, provider="cpu", threads=threads, precision="fp32")
    q = Model(package_dir, provider="cpu", threads=threads, precision="fp32", encoder_file=encoder_file, verify=False)
    names = [t.get("name", f"track{k}") for k, t in enumerate(ref.info["tracks"])]
    out: dict = {"n_windows": int(len(tokens)), "n_prior": int(n_prior), "prior_seed": prior_seed}
    out["tracks"] = {n: {} for n in names}

    runs = [("recon", tokens)]
    if n_prior:
        src = ref.prior_model
        runs.append(("prior", decode_all(src, src.sample_z(n_prior, prior_seed), chunk)))
    for label, toks in runs:
        z_ref, z_q = encode_all(ref, toks, chunk), encode_all(q, toks, chunk)
        if label == "recon":
            err = np.linalg.norm(z_q - z_ref, axis=1) / np.maximum(np.linalg.norm(z_ref, axis=1), 1e-12)
            out["mu_rel_error"] = float(err.mean())
        record_agreement(out, label, agreements(decode_all(ref, z_ref, chunk), decode_all(ref, z_q, chunk), names))
    return out


def encoder_section(entry: dict) -> str:
    """The "## int8 encoder" markdown section of a model card, from an `int8_encoder` manifest section."""
    gate = entry["min_agreement"]
    low = min(entry["agreement_recon"], entry["agreement_prior"])
    if entry.get("usable"):
        verdict = (f"**Passed** the {gate:.2f} gate (lower agreement {low:.4f}): `{P.INT8_ENCODER_FILE}` "
                   f"({entry['bytes'] / 1e6:.2f} MB) is in the package and `precision=\"auto\"` runs it on the "
                   f"CPU; `--precision fp32` keeps the float encoder.")
    else:
        verdict = f"**Not shipped**: {entry['reason']}. The runtime runs the float encoder."
    src = "the sampler's" if entry.get("pair") else "the package's"
    return "\n".join([
        INT8_ENCODER_HEADING, "",
        f"`python -m export_onnx add-int8` on {entry['date'][:10]}: the encoder's {entry['lstms_quantized']} "
        f"LSTM(s) with 8-bit weights {'per gate row' if entry['per_channel'] else 'per tensor'} (onnxruntime "
        f"DynamicQuantizeLSTM: activations quantised per call); the mu / sigma projections stay float32. "
        f"mu's mean relative error on the held-out windows: {entry['mu_rel_error']:.4f}. Argmax token "
        f"agreement of the float decoder (temperature 0) from the int8 encoder's code with its decode "
        f"from the float encoder's:", "",
        "| encoded | sequences | token agreement (± s.e.) | identical sequences |", "|---|---|---|---|",
        f"| held-out test windows (sources {entry.get('sources', '?')}, seed {entry.get('window_seed', 0)}) | "
        f"{entry['n_windows']:,} | {entry['agreement_recon']:.4f}{format_se(entry.get('se_recon'))} | "
        f"{entry.get('identical_recon', float('nan')):.3f} |",
        f"| {src} prior samples (T = 0, seed {entry.get('prior_seed', 0)}) | {entry['n_prior']:,} | "
        f"{entry['agreement_prior']:.4f}{format_se(entry.get('se_prior'))} | "
        f"{entry.get('identical_prior', float('nan')):.3f} |", "", verdict, ""])


def add_int8_encoder(package, tokens: np.ndarray, n_prior: int, *, sources: str, test_windows: int,
                     window_seed: int = 0, prior_seed: int = 0, min_agreement: float = P.INT8_MIN_AGREEMENT,
                     max_mb: float | None = None, per_channel: bool = True, threads: int = 1,
                     write: bool = True) -> dict:
    """Quantise a package's encoder, measure it against the float one, keep it if it passes.

    Args:
        package: a package directory.
        tokens: (N, steps, tracks) held-out windows (export_onnx.int8.held_out_windows, or given).
        n_prior: prior samples encoded again.
        sources, test_windows: what the windows are, for the card.
        min_agreement: the gate on min(agreement_recon, agreement_prior).
        max_mb: no int8 file when the package would be larger (None: no limit).
        write: False: measure only, change nothing.

    Returns:
        The `int8_encoder` section (as written into model.json when `write`).

    Raises:
        ValueError: no windows or no prior samples, or an encoder without LSTM.
    """
    t0 = time.time()
    pkg = Path(package)
    info = P.read_manifest(pkg)
    src = info["graphs"]["encoder"]["file"]
    if len(tokens) < 1 or n_prior < 1:
        raise ValueError(f"the gate needs held-out windows and prior samples (got {len(tokens)} and {n_prior})")
    with tempfile.TemporaryDirectory(prefix="latent-bridge-int8-encoder.") as tmp:
        cand = Path(tmp) / P.INT8_ENCODER_FILE
        q = quantize_encoder(pkg / src, cand, per_channel)
        _log(f"{pkg.name}: encoder {q['lstms_quantized']} LSTM(s) quantised, {q['bytes'] / 1e6:.2f} MB; "
             f"encoding {len(tokens)} windows + {n_prior} prior samples twice")
        m = measure_encoder_agreement(pkg, cand, tokens, n_prior, prior_seed, threads)
        size = package_megabytes(pkg, info, {P.INT8_ENCODER_FILE: q["bytes"]})
        entry = new_entry(info, src, m, q["bytes"], size=size, min_agreement=min_agreement, per_channel=per_channel,
                          window_seed=window_seed, prior_seed=prior_seed, sources=sources, test_windows=test_windows,
                          weight_type="int8", op_types=list(OP_TYPES), lstms_quantized=q["lstms_quantized"])
        entry["wall_time_s"] = round(time.time() - t0, 1)
        settle(pkg, info, entry, cand, size=size, min_agreement=min_agreement, max_mb=max_mb,
               key=P.INT8_ENCODER_KEY, fname=P.INT8_ENCODER_FILE, section=encoder_section, write=write)
    _log(f"{pkg.name}: encoder agreement recon {entry['agreement_recon']}, prior {entry['agreement_prior']}; "
         f"{'kept' if entry['usable'] else 'refused'} ({entry['reason']})")
    return entry
