"""`python -m export_onnx add-int8 bridge/models/<name>`: an int8 decoder step behind a quality gate
(and an int8 encoder behind its own: export_onnx.int8_encoder).

    python -m export_onnx add-int8 bridge/models/mel_2bar [--windows N] [--samples N]
                                   [--min-agreement 0.98] [--max-mb 15] [--no-per-channel] [--no-write]
                                   [--no-encoder | --encoder-only]

Re-runnable: a package that already has an int8 step (or a newly exported one) gets it replaced.

1. **The graph.** onnxruntime's dynamic quantisation (`quantize_dynamic`, its IntegerOps registry)
   quantises MatMul, Conv, Gather, LSTM, Attention, ... but not Gemm (Gemm is only in the static,
   QLinear registry), and export_onnx.step_graph writes every matrix product of the step as a Gemm.
   So a copy of decoder_step.onnx is rewritten first (`gemms_to_matmuls`): each Gemm whose B is a
   constant becomes `MatMul(A, B') + Add(C)` (B' = alpha * B, transposed for transB; weights stored
   as float16 + Cast are folded back to a float32 initializer so the quantiser sees a constant), then
   `quantize_dynamic(op_types_to_quantize=["MatMul"], per_channel=True, weight_type=QUInt8,
   nodes_to_exclude=<the output projections>)`: the LSTM kernels' weights 8-bit per output column,
   activations quantised per call to uint8 over their dynamic range (onnxruntime fuses each
   DynamicQuantizeLinear + MatMulInteger + scale chain into one DynamicQuantizeMatMul at load). The
   rewrite happens here, not in step_graph, so that the float graph stays exactly what the exporter
   checked against torch and a shipped package gets its int8 step without a re-export.
   Measured choices (shipped mel_2bar, 512 held-out windows / 256 prior samples, agreement recon /
   prior): int8 (QInt8) weights 0.972 / 0.955 and uint8 (QUInt8) weights 0.992 / 0.977 with the same
   per-channel scales at the same speed (a CPU without VNNI here: the u8s8 kernel is the weak one;
   the u8u8 kernel is safe on every CPU); keeping the output projections (small: units x classes)
   float as well: 0.992 / 0.980 (trio_16bar prior 0.991 -> 0.994, mel_16bar 0.992 -> 0.995), no
   measurable cost. The gathered layer-1 rows, the gates, the states and the graph's inputs and
   outputs stay float32: the int8 graph is a drop-in for the float one.
2. **The gate.** The whole autoregressive decode at temperature 0 (argmax), once with the float step
   and once with the int8 step (`Model(step_file=...)`), on (a) reconstructions from the posterior
   mean of held-out windows (the audit's rebuilt test split, export_onnx.audit.load_test_windows, its
   seeded subset: the same windows the audit measures) and (b) seeded prior samples z ~ N(0, I).
   Agreement = the share of (sequence, step, track) tokens that are equal. Each decode runs free on
   its own previous tokens, so an early flip counts at every later step it changes. The decodes run
   in batches of 256; activations are quantised per call over the whole batch, but the batch size
   barely matters (shipped mel_2bar, the same 256 + 128 sequences in batches of 1 / 8 / 64:
   reconstructions 0.992 / 0.994 / 0.992, prior 0.977 / 0.982 / 0.975).
3. **The package.** model.json gets an `int8` section (bridge.runtime.package.int8_step): file,
   sha256 (also in `files`, hashed like the other graphs), source_sha256 (the float step it came
   from), agreement_recon, agreement_prior, n_windows, n_prior, per_channel, min_agreement, usable,
   reason, per-track agreements, sizes. When the lower agreement is below `min_agreement` (0.98), or
   the package would grow past `max_mb` (15 MB, export's limit), no file is kept: the section
   records the measurement with `file: null, usable: false` and the reason. MODEL_CARD.md gets a
   "## int8 decoder step" section (model_card.INT8_HEADING, kept by card refreshes).

The runtime (`precision="auto"`, the default) then runs the int8 step only where it passed the gate.
"""
from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bridge.runtime import package as P

from .int8_gate import (MAX_PACKAGE_MB, agreements, decode_all, encode_all, format_se, held_out_windows, op_counts,
                        new_entry, package_megabytes, record_agreement, settle)
from .model_card import INT8_HEADING

OP_TYPES = ("MatMul",)


def _log(msg: str) -> None:
    print(f"[add-int8] {msg}", file=sys.stderr, flush=True)


# ============================================================================ the graph
def gemms_to_matmuls(model):
    """A copy of an ONNX model in which every Gemm with a constant B is MatMul + Add.

    Gemm(A, B, C; alpha, beta, transA=0, transB) -> MatMul(A, B') [+ Add(., C')], B' = alpha * B
    (transposed when transB), a float32 initializer even when B was stored as float16 + Cast;
    C' = beta * C (a constant C is scaled, a computed C is only allowed with beta = 1). Gemms this
    cannot express (transA, a computed B) are left as they are. Initializers and Casts nothing uses
    any more are dropped.

    Returns:
        (the new ModelProto, the names of the Gemm nodes rewritten).
    """
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    casts = {n.output[0]: n for n in g.node if n.op_type == "Cast" and n.input[0] in inits}

    def constant(name):
        """The float32 value of an initializer, or of a Cast of one to float; None otherwise."""
        if name in inits:
            arr = numpy_helper.to_array(inits[name])
        elif name in casts and casts[name].input[0] in inits:
            to = next((a.i for a in casts[name].attribute if a.name == "to"), None)
            if to != onnx.TensorProto.FLOAT:
                return None
            arr = numpy_helper.to_array(inits[casts[name].input[0]])
        else:
            return None
        return arr.astype(np.float32) if arr.dtype.kind == "f" else None

    nodes, new_inits, rewritten = [], [], []
    for n in g.node:
        if n.op_type != "Gemm":
            nodes.append(n)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        b = constant(n.input[1])
        c_name = n.input[2] if len(n.input) > 2 and n.input[2] else None
        c = constant(c_name) if c_name else None
        if attrs.get("transA", 0) or b is None or b.ndim != 2 or (c_name and c is None and beta != 1.0):
            nodes.append(n)
            continue
        if attrs.get("transB", 0):
            b = b.T
        name = n.name or f"gemm_{len(rewritten)}"
        w = f"{name}_matmul_B"
        new_inits.append(numpy_helper.from_array(np.ascontiguousarray(alpha * b, dtype=np.float32), w))
        out = n.output[0]
        if c_name is None:
            nodes.append(helper.make_node("MatMul", [n.input[0], w], [out], name=f"{name}_MatMul"))
        else:
            nodes.append(helper.make_node("MatMul", [n.input[0], w], [f"{name}_mm"], name=f"{name}_MatMul"))
            if c is not None and beta != 1.0:
                c_in = f"{name}_add_C"
                new_inits.append(numpy_helper.from_array((beta * c).astype(np.float32), c_in))
            else:
                c_in = c_name
            nodes.append(helper.make_node("Add", [f"{name}_mm", c_in], [out], name=f"{name}_Add"))
        rewritten.append(n.name)
    # drop what nothing reads any more (the float16 weights and their Casts)
    outputs = {o.name for o in g.output}
    while True:
        used = {i for n in nodes for i in n.input} | outputs
        kept = [n for n in nodes if n.op_type != "Cast" or n.output[0] in used]
        if len(kept) == len(nodes):
            break
        nodes = kept
    used = {i for n in nodes for i in n.input} | outputs
    all_inits = [i for i in g.initializer if i.name in used] + new_inits
    del g.node[:]
    g.node.extend(nodes)
    del g.initializer[:]
    g.initializer.extend(all_inits)
    onnx.checker.check_model(m)
    return m, rewritten


def output_projections(model, output: str = "logits") -> list[str]:
    """Names of the MatMul nodes that make `output` directly: reached from it backwards through
    Identity, Concat and Add nodes only (the cores' output projections of a step graph)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    found, todo, seen = [], [output], set()
    while todo:
        n = producer.get(todo.pop())
        if n is None or n.name in seen:
            continue
        seen.add(n.name)
        if n.op_type == "MatMul":
            found.append(n.name)
        elif n.op_type in ("Identity", "Concat", "Add"):
            todo.extend(n.input)
    return sorted(found)


def quantize_step(src, dst, per_channel: bool = True, output_projection: bool = False) -> dict:
    """Write the int8 version of the decoder step graph `src` to `dst` (see the module docstring).

    Args:
        per_channel: one weight scale per output column (else one per tensor).
        output_projection: quantise the logits' projections too (default: they stay float).

    Returns:
        {gemms_rewritten, matmuls, matmuls_quantized, kept_float (MatMul names), ops (op type ->
        count in the int8 graph), bytes}.

    Raises:
        ValueError: nothing in the graph could be quantised.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model, rewritten = gemms_to_matmuls(onnx.load(str(src)))
    matmuls = op_counts(model).get("MatMul", 0)
    keep = [] if output_projection else output_projections(model)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)   # the quantiser's advice to pre-process (shape inference) is for CNNs
    try:
        quantize_dynamic(model, str(dst), op_types_to_quantize=list(OP_TYPES), per_channel=per_channel,
                         weight_type=QuantType.QUInt8, nodes_to_exclude=keep or None,
                         extra_options={"MatMulConstBOnly": True})
    finally:
        root.setLevel(level)
    ops = op_counts(onnx.load(str(dst)))
    quantized = ops.get("MatMulInteger", 0) + ops.get("DynamicQuantizeMatMul", 0)
    if not quantized:
        raise ValueError(f"{src}: no MatMul could be quantised ({matmuls} MatMuls, {len(rewritten)} Gemms rewritten)")
    return {"gemms_rewritten": len(rewritten), "matmuls": matmuls, "matmuls_quantized": quantized,
            "kept_float": keep, "ops": ops, "bytes": Path(dst).stat().st_size}


# ============================================================================ the gate
def measure_agreement(package_dir, step_file, tokens: np.ndarray, n_prior: int = 1024, prior_seed: int = 0,
                      threads: int = 1, chunk: int = 256) -> dict:
    """Argmax agreement of the int8 decode (`step_file`) with the float decode of a package.

    Args:
        package_dir: the package (its decoder_step.onnx is the reference; both use its encoder).
        step_file: the candidate decoder step graph.
        tokens: (N, steps, tracks) held-out windows: reconstructed from the float encoder's posterior mean.
        n_prior: prior latents (Model.prior_latents: z ~ N(0, I) from numpy default_rng(prior_seed); for
            a pair the sampler's samples encoded), decoded at T = 0.
        chunk: sequences per decode call.

    Returns:
        {agreement_recon, agreement_prior, se_recon, se_prior (standard errors over sequences: a flip
        changes the rest of its sequence), identical_recon, identical_prior (shares of sequences with
        every token equal), tracks {name: {recon, prior}}, n_windows, n_prior, prior_seed}.
    """
    from bridge.runtime.engine import Model
    ref = Model(package_dir, provider="cpu", threads=threads, precision="fp32")
    q = Model(package_dir, provider="cpu", threads=threads, step_file=step_file, verify=False)
    names = [t.get("name", f"track{k}") for k, t in enumerate(ref.info["tracks"])]
    out: dict = {"n_windows": int(len(tokens)), "n_prior": int(n_prior), "prior_seed": prior_seed}
    out["tracks"] = {n: {} for n in names}
    runs = []
    if len(tokens):
        runs.append(("recon", encode_all(ref, tokens, chunk)))
    if n_prior:
        # what the package decodes from the prior: z ~ N(0, I) or its fitted prior's draws, or for a
        # pair the sampler's samples encoded (the package never decodes raw prior draws then)
        runs.append(("prior", ref.prior_latents(n_prior, prior_seed)))
    for label, z in runs:
        record_agreement(out, label, agreements(decode_all(ref, z, chunk), decode_all(q, z, chunk), names))
    return out


# ============================================================================ the package
def prior_label(entry: dict) -> str:
    """What the gate's prior decodes were, for a card: the sampler's samples (a pair), draws of the
    package's fitted prior, or of N(0, I)."""
    if entry.get("pair"):
        return "the sampler's prior samples, encoded"
    if entry.get("prior_components"):
        return f"prior samples from the fitted prior ({entry['prior_components']} components)"
    return "prior samples z ~ N(0, I)"


def int8_section(entry: dict) -> str:
    """The "## int8 decoder step" markdown section of a model card, from an `int8` manifest section."""
    tr = entry.get("tracks") or {}
    tracks = "; ".join(f"{n} {v.get('recon', float('nan')):.4f} / {v.get('prior', float('nan')):.4f}"
                       for n, v in tr.items()) if len(tr) > 1 else ""
    gate = entry["min_agreement"]
    low = min(entry["agreement_recon"], entry["agreement_prior"])
    if entry.get("usable"):
        verdict = (f"**Passed** the {gate:.2f} gate (lower agreement {low:.4f}): `decoder_step.int8.onnx` "
                   f"({entry['bytes'] / 1e6:.2f} MB) is in the package and `precision=\"auto\"` (the default of "
                   f"`bridge.load_model`, `python -m bridge serve` and the CLI) runs it on the CPU; "
                   f"`--precision fp32` keeps the float step.")
    else:
        verdict = f"**Not shipped**: {entry['reason']}. The runtime runs the float step."
    lines = [INT8_HEADING, "",
             f"`python -m export_onnx add-int8` on {entry['date'][:10]}: {entry['matmuls_quantized']} of the "
             f"decoder step's {entry['matmuls_quantized'] + entry.get('matmuls_float', 0)} matrix products "
             f"(its Gemms, rewritten as MatMul + Add) with 8-bit weights "
             f"{'per output channel' if entry['per_channel'] else 'per tensor'} (onnxruntime dynamic "
             f"quantisation: activations quantised per call); the output projections"
             f"{' too' if not entry.get('matmuls_float') else ' stay float32'}, as do the gathered input "
             f"rows, gates and states. Argmax token agreement of the whole autoregressive decode "
             f"(temperature 0) with the float step:", "",
             "| decodes | sequences | token agreement (± s.e.) | identical sequences |", "|---|---|---|---|",
             f"| reconstructions from the posterior mean, held-out test windows (sources "
             f"{entry.get('sources', '?')}, seed {entry.get('window_seed', 0)}) | {entry['n_windows']:,} | "
             f"{entry['agreement_recon']:.4f}{format_se(entry.get('se_recon'))} | "
             f"{entry.get('identical_recon', float('nan')):.3f} |",
             f"| {prior_label(entry)}"
             f", T = 0 (seed {entry.get('prior_seed', 0)}) | {entry['n_prior']:,} | "
             f"{entry['agreement_prior']:.4f}{format_se(entry.get('se_prior'))} | "
             f"{entry.get('identical_prior', float('nan')):.3f} |", ""]
    if tracks:
        lines += [f"Per track (reconstructions / prior samples): {tracks}.", ""]
    lines += [verdict, ""]
    return "\n".join(lines)


def add_int8(package, windows: np.ndarray | None = None, n_windows: int | None = None, n_prior: int | None = None,
             window_seed: int = 0, prior_seed: int = 0, min_agreement: float = P.INT8_MIN_AGREEMENT,
             max_mb: float | None = MAX_PACKAGE_MB, per_channel: bool = True, data_root=None, midi_dirs=None,
             cache_dir=None, threads: int = 1, write: bool = True, sources: str | None = None,
             output_projection: bool = False, encoder: bool = True) -> dict:
    """Quantise a package's decoder step, measure it against the float step, keep it if it passes;
    then the same for its encoder (export_onnx.int8_encoder, on the same windows and prior seed).

    Args:
        package: a package directory or name (bridge.runtime.package.find_model).
        windows: (N, steps, tracks) held-out tokens to use instead of the audit's test split (tests);
            `sources` then names them in the card.
        n_windows: held-out windows (default: 512 for 2-bar models, 256 for longer ones, as the audit).
        n_prior: prior samples decoded at T = 0 (default: 1024 for 2-bar models, 256 for longer ones,
            ~32k and ~65k steps per track: at 256 the 2-bar estimate's standard error is ~0.003).
        min_agreement: the gate on min(agreement_recon, agreement_prior).
        max_mb: no int8 file when the package would be larger (None: no limit).
        per_channel: per-output-channel weight scales (else one per tensor).
        write: False: measure only, change nothing.
        output_projection: quantise the output projections too (default: they stay float).
        encoder: also the int8 encoder (its `int8_encoder` section; see export_onnx.int8_encoder).

    Returns:
        The `int8` section (as written into model.json when `write`).

    Raises:
        ModelError: not a package; FileNotFoundError: no held-out data (and no `windows`).
    """
    t0 = time.time()
    pkg = P.find_model(package)
    info = P.read_manifest(pkg)
    P.verify_files(pkg, info)
    step = info["graphs"]["decoder_step"]["file"]
    config = info.get("config", info["name"])
    if windows is None:
        held = held_out_windows(pkg, config, n_windows, window_seed, info["bars"], data_root, midi_dirs, cache_dir)
        tokens, sources, test_windows = held["tokens"], held["sources"], held["test_windows"]
    else:
        tokens = np.asarray(windows, dtype=np.int64)
        if n_windows is not None:
            tokens = tokens[:n_windows]
        sources, test_windows = sources or "given", int(len(tokens))
    if n_prior is None:
        n_prior = 1024 if info["bars"] <= 2 else 256
    if len(tokens) < 1 or n_prior < 1:
        raise ValueError(f"the gate needs held-out windows and prior samples (got {len(tokens)} and {n_prior})")
    with tempfile.TemporaryDirectory(prefix="latent-bridge-int8.") as tmp:
        cand = Path(tmp) / P.INT8_FILE
        q = quantize_step(pkg / step, cand, per_channel, output_projection)
        _log(f"{pkg.name}: {q['gemms_rewritten']} Gemms -> MatMul, {q['matmuls_quantized']} quantised, "
             f"{q['bytes'] / 1e6:.2f} MB; decoding {len(tokens)} windows + {n_prior} prior samples twice")
        m = measure_agreement(pkg, cand, tokens, n_prior, prior_seed, threads)
        size = package_megabytes(pkg, info, {P.INT8_FILE: q["bytes"]})
        entry = new_entry(info, step, m, q["bytes"], size=size, min_agreement=min_agreement, per_channel=per_channel,
                          window_seed=window_seed, prior_seed=prior_seed, sources=sources, test_windows=test_windows,
                          weight_type="uint8", op_types=list(OP_TYPES), matmuls_quantized=q["matmuls_quantized"],
                          matmuls_float=len(q["kept_float"]), gemms_rewritten=q["gemms_rewritten"])
        entry["wall_time_s"] = round(time.time() - t0, 1)
        settle(pkg, info, entry, cand, size=size, min_agreement=min_agreement, max_mb=max_mb,
               key=P.INT8_KEY, fname=P.INT8_FILE, section=int8_section, write=write)
    _log(f"{pkg.name}: agreement recon {entry['agreement_recon']}, prior {entry['agreement_prior']}; "
         f"{'kept' if entry['usable'] else 'refused'} ({entry['reason']})")
    if encoder:
        from .int8_encoder import add_int8_encoder
        add_int8_encoder(pkg, tokens, n_prior, sources=sources, test_windows=test_windows, window_seed=window_seed,
                         prior_seed=prior_seed, min_agreement=min_agreement, max_mb=max_mb, per_channel=per_channel,
                         threads=threads, write=write)
    return entry


# ============================================================================ CLI
def add_parser(subparsers) -> None:
    p = subparsers.add_parser("add-int8", help="an int8 decoder step, kept when its argmax agreement passes",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("package", help="model package directory (or a name in bridge/models)")
    p.add_argument("--windows", type=int, default=None,
                   help="held-out windows (default 512 for 2-bar models, 256 otherwise; the audit's subset)")
    p.add_argument("--samples", type=int, default=None,
                   help="prior samples decoded at T = 0 (default 1024 for 2-bar models, 256 otherwise)")
    p.add_argument("--seed", type=int, default=0, help="seed of the window subset (default 0, as the audit)")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the prior samples (default 0)")
    p.add_argument("--min-agreement", type=float, default=P.INT8_MIN_AGREEMENT,
                   help=f"the gate (default {P.INT8_MIN_AGREEMENT})")
    p.add_argument("--max-mb", type=float, default=MAX_PACKAGE_MB,
                   help=f"keep no int8 file when the package would be larger (default {MAX_PACKAGE_MB:g}; 0: no limit)")
    p.add_argument("--no-per-channel", dest="per_channel", action="store_false",
                   help="one weight scale per tensor instead of per output channel")
    p.add_argument("--quantize-output", action="store_true",
                   help="quantise the output projections too (default: they stay float)")
    p.add_argument("--data-root", default=None, help="folder holding the MIDI sets (default ../shared/data)")
    p.add_argument("--midi-dir", action="append", default=None, help="MIDI folder of the model's data (repeatable)")
    p.add_argument("--cache-dir", default=None, help="where test windows are cached (default data/audit)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--no-encoder", dest="encoder", action="store_false",
                       help="the decoder step only (default: the encoder too, behind its own gate)")
    which.add_argument("--encoder-only", action="store_true",
                       help="the encoder only (a package whose int8 step is already measured)")
    p.add_argument("--no-write", action="store_true", help="measure and print only; change nothing")
    p.set_defaults(func=_main)


def _main(args) -> int:
    if args.encoder_only:
        from .int8_encoder import add_int8_encoder
        pkg = P.find_model(args.package)
        info = P.read_manifest(pkg)
        P.verify_files(pkg, info)
        held = held_out_windows(pkg, info.get("config", info["name"]), args.windows, args.seed, info["bars"],
                                args.data_root, args.midi_dir, args.cache_dir)
        n_prior = args.samples if args.samples is not None else (1024 if info["bars"] <= 2 else 256)
        entry = add_int8_encoder(pkg, held["tokens"], n_prior, sources=held["sources"],
                                 test_windows=held["test_windows"], window_seed=args.seed, prior_seed=args.sample_seed,
                                 min_agreement=args.min_agreement, max_mb=args.max_mb or None,
                                 per_channel=args.per_channel, threads=args.threads, write=not args.no_write)
        print(json.dumps(entry, indent=1))
        return 0
    entry = add_int8(args.package, n_windows=args.windows, n_prior=args.samples, window_seed=args.seed,
                     prior_seed=args.sample_seed, min_agreement=args.min_agreement, max_mb=args.max_mb or None,
                     per_channel=args.per_channel, data_root=args.data_root, midi_dirs=args.midi_dir,
                     cache_dir=args.cache_dir, threads=args.threads, write=not args.no_write,
                     output_projection=args.quantize_output, encoder=args.encoder)
    print(json.dumps(entry, indent=1))
    return 0
