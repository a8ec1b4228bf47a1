"""Export a trained MusicVAE to a runtime model package (docs/architecture.md, "Model package").

    python -m export_onnx export runs/mel_2bar --out bridge/models/mel_2bar [--which best|latest]
                                 [--weights fp32|fp16] [--name NAME]

writes OUT/model.json and the graphs encoder.onnx, conductor.onnx (hierarchical), decoder_init.onnx,
decoder_step.onnx, all float32 with a dynamic batch axis. Every graph is checked with
onnx.checker and run on onnxruntime against the torch module on random inputs (batch sizes other
than the one traced); the export fails if any output differs by more than 1e-4.

Graphs: the encoder and the conductor use torch's fused LSTM and become ONNX `LSTM` ops; the
decoder step is written directly in ONNX by export_onnx.step_graph (plain Gemm/Sigmoid/Tanh, one fused
kernel per layer, the previous token's kernel row gathered), checked against `decoder.step`.

`--weights fp16` stores the weights as float16 (Cast to float32 at session start: the same compute,
half the file). The torch model is then rounded to float16 weights before the parity check, so the
check still compares like with like; model.json records `weights: fp16`.

The run directory may also hold metrics.json (from evaluate; copied into `metrics`) and
directions.json (attribute vectors; copied into `attributes` / `directions`).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from bridge.core.notes import STEPS_PER_BAR
from bridge.runtime.package import (FORMAT, FORMAT_VERSION, GRAPH_IO, GRAPH_IO_V2, MANIFEST, record_files,
                                    write_manifest)

OPSET = 17
TOLERANCE = 1e-4
MAX_PACKAGE_MB = 15.0


class ExportError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------- graph wrappers
class _Encoder(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs):
        return self.model.encoder(inputs)


class _Conductor(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, z):
        return self.model.decoder.conductor(z)


class _DecoderInit(torch.nn.Module):
    """init_state; with `proj` (export_onnx.step_graph.cond_projection) also `cond_proj`, the
    conditioning's part of the layer-1 gates that the step graph adds (format_version 2)."""

    def __init__(self, model, proj=None):
        super().__init__()
        self.model = model
        self.proj = None if proj is None else tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in proj)
        self.blocks = None
        if proj is not None and getattr(model.decoder, "_cond_slices", None) is not None:
            # cores reading their own columns of cond: one small product per core instead of a
            # dense kernel that is mostly zeros; equal blocks (cores of one short model) stored once
            from .step_graph import cond_blocks
            self.blocks, names = [], {}
            for a, b, kern, bias in cond_blocks(model.decoder):
                pair = []
                for arr in (kern, bias):
                    key = (arr.shape, arr.tobytes())
                    if key not in names:
                        names[key] = f"cond_block_{len(names)}"
                        self.register_buffer(names[key], torch.from_numpy(np.ascontiguousarray(arr)))
                    pair.append(names[key])
                self.blocks.append((a, b, *pair))

    def project(self, cond):
        if self.blocks is not None:
            return torch.cat([torch.matmul(cond[:, a:b], getattr(self, k)) + getattr(self, v)
                              for a, b, k, v in self.blocks], dim=-1)
        return torch.matmul(cond, self.proj[0]) + self.proj[1]

    def forward(self, cond):
        c, h = self.model.decoder.init_state(cond)
        if self.proj is None:
            return c, h
        return c, h, self.project(cond)


class _DecoderStep(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, prev, cond, state_c, state_h):
        return self.model.decoder.step(prev, cond, state_c, state_h)


def graph_specs(model) -> dict:
    """role -> (wrapper, {input: shape}, {output: shape}); "B" = dynamic batch. The names are the
    package format's graph table (bridge.runtime.package.GRAPH_IO, GRAPH_IO_V2 when the decoder's
    step graph reads cond_proj), in its order."""
    dec = model.decoder
    steps, n_in, z = model.num_steps, model.input_size, model.z_size
    L, U = dec.state_layers, dec.units
    from .step_graph import cond_projection
    proj = cond_projection(dec)
    table = GRAPH_IO if proj is None else GRAPH_IO_V2   # format_version 2: decoder_init projects cond once per bar
    step_cond = ["B", dec.cond_size if proj is None else int(proj[0].shape[1])]
    state = [L, "B", U]
    # role -> (wrapper, input shapes, output shapes), the shapes in the table's order
    roles = {"encoder": (_Encoder(model), [["B", steps, n_in]], [["B", z], ["B", z]])}
    if dec.hierarchical:
        roles["conductor"] = (_Conductor(model), [["B", z]], [["B", dec.bars, dec.emb_size]])
    roles["decoder_init"] = (_DecoderInit(model, proj), [["B", dec.cond_size]],
                             [state, state] + ([] if proj is None else [step_cond]))
    roles["decoder_step"] = (_DecoderStep(model), [["B", n_in], step_cond, state, state], [["B", n_in], state, state])
    specs = {}
    for role, (wrapper, in_shapes, out_shapes) in roles.items():
        ins, outs = table[role]
        specs[role] = (wrapper, dict(zip(ins, in_shapes, strict=True)), dict(zip(outs, out_shapes, strict=True)))
    return specs


def _example(shape, batch: int, rng: np.random.Generator, name: str, model) -> np.ndarray:
    dims = [batch if d == "B" else d for d in shape]
    if name in ("inputs", "prev"):   # valid one-hots, as the runtime feeds them
        nc = model.num_classes
        lead = dims[:-1]
        parts = [np.eye(n, dtype=np.float32)[rng.integers(0, n, size=lead)] for n in nc]
        return np.concatenate(parts, axis=-1)
    if name in ("state_c", "state_h"):
        return np.tanh(rng.standard_normal(dims)).astype(np.float32)
    return rng.standard_normal(dims).astype(np.float32)


def _export_one(wrapper, inputs: dict, outputs: dict, path: Path, example: tuple) -> None:
    axes = {}
    for name, shape in list(inputs.items()) + list(outputs.items()):
        if "B" in shape:
            axes[name] = {shape.index("B"): "B"}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, example, str(path), input_names=list(inputs), output_names=list(outputs),
                          dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True, dynamo=False)


def set_io_shapes(path: Path, inputs: dict, outputs: dict) -> None:
    """Write the declared shapes (static sizes, "B" for the batch) on the graph inputs and outputs;
    the tracer leaves some static sizes symbolic (e.g. the conductor's bar count)."""
    import onnx
    m = onnx.load(str(path))
    for values, shapes in ((m.graph.input, inputs), (m.graph.output, outputs)):
        for v in values:
            if v.name not in shapes:
                continue
            dims = v.type.tensor_type.shape.dim
            if len(dims) != len(shapes[v.name]):
                raise ExportError(f"{path.name}: {v.name} has rank {len(dims)}, expected {shapes[v.name]}")
            for d, want in zip(dims, shapes[v.name]):
                if isinstance(want, str):
                    d.dim_param = want
                else:
                    if d.HasField("dim_value") and d.dim_value != want:
                        raise ExportError(f"{path.name}: {v.name} has shape {[x for x in dims]}, expected {shapes[v.name]}")
                    d.dim_value = want
    onnx.save(m, str(path))


def to_fp16_storage(path: Path) -> None:
    """Store float32 initializers as float16 + a Cast back to float32 (folded by onnxruntime at load).
    Only initializers that float16 holds exactly (the weights were rounded by `round_weights_fp16`);
    derived constants such as a bias with the forget bias folded in stay float32."""
    import onnx
    from onnx import helper, numpy_helper
    m = onnx.load(str(path))
    g = m.graph
    casts, keep = [], []
    for init in g.initializer:
        arr = numpy_helper.to_array(init) if init.data_type == onnx.TensorProto.FLOAT else None
        if arr is not None and arr.size >= 256 and np.array_equal(arr.astype(np.float16).astype(np.float32), arr):
            arr = arr.astype(np.float16)
            half = numpy_helper.from_array(arr, init.name + "__fp16")
            keep.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT,
                                          name=init.name + "__cast"))
        else:
            keep.append(init)
    del g.initializer[:]
    g.initializer.extend(keep)
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    onnx.save(m, str(path))


def round_weights_fp16(model) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())


def _build_step_graph(model):
    """The decoder step written directly in ONNX (export_onnx.step_graph: fewer nodes, fused
    kernels, the previous token's kernel row gathered); None when the decoder is not made of
    `LstmCoreDecoder`s, and then `decoder.step` is traced. Parity with `decoder.step` is checked
    by `verify_graphs` either way."""
    from .step_graph import build_step_model
    return build_step_model(model.decoder, OPSET, cond_proj=True)


def export_graphs(model, out_dir: Path, weights: str = "fp32", example_batch: int = 2) -> dict:
    """Write the ONNX graphs of `model` into out_dir; returns the manifest's `graphs` table."""
    import onnx
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    graphs = {}
    for role, (wrapper, inputs, outputs) in graph_specs(model).items():
        path = out_dir / f"{role}.onnx"
        example = tuple(torch.from_numpy(_example(s, example_batch, rng, n, model)) for n, s in inputs.items())
        built = _build_step_graph(model) if role == "decoder_step" else None
        if built is not None:
            onnx.save(built, str(path))
        else:
            try:
                _export_one(wrapper.eval(), inputs, outputs, path, example)
            except Exception as e:
                raise ExportError(f"{role}: torch.onnx.export failed: {e}") from e
        set_io_shapes(path, inputs, outputs)
        if weights == "fp16":
            to_fp16_storage(path)
        try:
            onnx.checker.check_model(str(path), full_check=True)
        except Exception as e:
            raise ExportError(f"{path}: onnx.checker rejects the graph: {e}") from e
        graphs[role] = {"file": path.name, "inputs": inputs, "outputs": outputs}
    return graphs


def verify_graphs(model, out_dir: Path, graphs: dict, batches=(1, 3), seed: int = 1,
                  tolerance: float = TOLERANCE) -> dict:
    """Run every graph on onnxruntime and the torch module on the same random inputs; returns the
    max abs difference per graph, raises ExportError above `tolerance`."""
    import onnxruntime as ort
    rng = np.random.default_rng(seed)
    specs = graph_specs(model)
    worst = {}
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    for role, g in graphs.items():
        wrapper, inputs, outputs = specs[role]
        sess = ort.InferenceSession(str(out_dir / g["file"]), so, providers=["CPUExecutionProvider"])
        diff = 0.0
        for b in batches:
            feeds = {n: _example(s, b, rng, n, model) for n, s in inputs.items()}
            if "cond_proj" in feeds:   # the step reads cond_proj = decoder_init's projection of cond
                cond = _example(["B", model.decoder.cond_size], b, rng, "cond", model)
                with torch.no_grad():
                    proj = specs["decoder_init"][0].project(torch.from_numpy(cond)).numpy()
                feeds = {n: (proj if n == "cond_proj" else v) for n, v in feeds.items()}
                ref_args = lambda case: [cond if n == "cond_proj" else v for n, v in case.items()]  # noqa: E731
            else:
                ref_args = lambda case: list(case.values())  # noqa: E731
            cases = [feeds]
            if "prev" in feeds:   # the first decoder step's prev is all zeros
                cases.append({**feeds, "prev": np.zeros_like(feeds["prev"])})
            for case in cases:
                got = sess.run(list(outputs), case)
                with torch.no_grad():
                    want = wrapper(*(torch.from_numpy(v) for v in ref_args(case)))
                want = want if isinstance(want, (tuple, list)) else (want,)
                for name, a, w in zip(outputs, got, want):
                    w = w.numpy()
                    if a.shape != w.shape:
                        raise ExportError(f"{role}.{name}: onnxruntime shape {a.shape} != torch {w.shape} (batch {b})")
                    diff = max(diff, float(np.abs(a - w).max()) if a.size else 0.0)
        if not diff <= tolerance:
            raise ExportError(f"{role}: onnxruntime differs from torch by {diff:.3g} > {tolerance}")
        worst[role] = diff
    return worst


# --------------------------------------------------------------------------------------------- manifest
def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as e:
        raise ExportError(f"{path}: unreadable ({e})") from e


def _jsonable(v):
    try:
        json.dumps(v)
        return v
    except TypeError:
        if isinstance(v, (tuple, list)):
            return [_jsonable(x) for x in v]
        if isinstance(v, dict):
            return {str(k): _jsonable(x) for k, x in v.items()}
        if isinstance(v, (np.floating, np.integer)):
            return v.item()
        return str(v)


def load_directions(path: Path, z_size: int) -> tuple[dict, list]:
    """directions.json -> (attributes, directions). Accepted forms:
    {"attributes": {name: {"vector": [...], ...}}, "directions": [{"name", "vector", ...}]},
    or {name: {"vector": [...], ...}} (all attributes), or [{"name", "vector", ...}] (directions)."""
    data = _read_json(path)
    if data is None:
        return {}, []
    if isinstance(data, list):
        attrs, dirs = {}, data
    elif isinstance(data, dict) and ("attributes" in data or "directions" in data):
        attrs, dirs = data.get("attributes") or {}, data.get("directions") or []
    elif isinstance(data, dict):
        attrs, dirs = data, []
    else:
        raise ExportError(f"{path}: expected an object or a list")
    out_attrs = {}
    for name, a in attrs.items():
        a = a if isinstance(a, dict) else {"vector": a}
        vec = np.asarray(a.get("vector"), dtype=np.float64)
        if vec.shape != (z_size,):
            raise ExportError(f"{path}: attribute {name!r} vector has shape {vec.shape}, z is {z_size}")
        out_attrs[name] = {**_jsonable(a), "vector": [float(x) for x in vec]}
    out_dirs = []
    for d in dirs:
        if not isinstance(d, dict) or "name" not in d or "vector" not in d:
            raise ExportError(f"{path}: a direction needs 'name' and 'vector'")
        vec = np.asarray(d["vector"], dtype=np.float64)
        if vec.shape != (z_size,):
            raise ExportError(f"{path}: direction {d['name']!r} vector has shape {vec.shape}, z is {z_size}")
        out_dirs.append({**_jsonable(d), "vector": [float(x) for x in vec], "effect": _jsonable(d.get("effect", {}))})
    return out_attrs, out_dirs


def summarize_metrics(run_dir: Path) -> dict | None:
    """metrics.json from evaluate when present; else the last validation entry of log.jsonl."""
    m = _read_json(run_dir / "metrics.json")
    if m is not None:
        if isinstance(m, list):
            m = m[-1] if m else {}
        return {"source": "metrics.json", **_jsonable(m)}
    log = run_dir / "log.jsonl"
    if log.exists():
        last = None
        for line in log.read_text().splitlines():
            if line.strip():
                try:
                    e = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if e.get("split") == "validation":
                    last = e
        if last is not None:
            return {"source": "log.jsonl (last validation)", **last}
    return None


def build_manifest(model, name: str, graphs: dict, weights: str = "fp32", training: dict | None = None,
                   metrics: dict | None = None, attributes: dict | None = None,
                   directions: list | None = None, parity: dict | None = None) -> dict:
    cfg, dec = model.config, model.decoder
    info = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION if "cond_proj" in graphs["decoder_step"]["inputs"] else 1,
        "name": name,
        "config": cfg.name,
        "kind": cfg.kind,
        "hierarchical": bool(cfg.hierarchical),
        "bars": cfg.bars,
        "steps_per_bar": STEPS_PER_BAR,
        "num_steps": model.num_steps,
        "z_size": model.z_size,
        "input_size": model.input_size,
        "tracks": [dict(t) for t in cfg.tracks],
        "decoder": {"layers": dec.layers, "units": dec.units, "cond_size": dec.cond_size,
                    "state_layers": dec.state_layers, "cores": dec.state_layers // dec.layers},
        "size": {"name": getattr(model, "size_name", "custom"), **_jsonable(model.size.__dict__)},
        "weights": weights,
        "opset": OPSET,
        "graphs": graphs,
        "attributes": attributes or {},
        "directions": directions or [],
        "metrics": metrics or {},
        "training": training or {},
        "export": {"torch": torch.__version__, "parity_max_abs_diff": parity or {},
                   "tolerance": TOLERANCE, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
    }
    if cfg.hierarchical:
        info["conductor"] = {"emb_size": dec.emb_size, "units": dec.cond_units, "layers": dec.cond_layers}
    return info


def write_package(model, out_dir, name: str | None = None, weights: str = "fp32", training: dict | None = None,
                  metrics: dict | None = None, attributes: dict | None = None, directions: list | None = None,
                  verify: bool = True, max_mb: float | None = None, extra_files: dict | None = None) -> dict:
    """Export `model` (a MusicVAE) as a package in out_dir (replaced atomically); returns model.json.
    `extra_files` {name in package: source path} ride along (metrics, training config, model card)
    and are hashed in the manifest like the graphs."""
    if weights not in ("fp32", "fp16"):
        raise ValueError(f"weights must be fp32 or fp16, got {weights!r}")
    out_dir = Path(out_dir)
    name = name or out_dir.name
    model = model.cpu().eval()
    if weights == "fp16":
        round_weights_fp16(model)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        graphs = export_graphs(model, tmp, weights)
        parity = verify_graphs(model, tmp, graphs) if verify else None
        info = build_manifest(model, name, graphs, weights, training, metrics, attributes, directions, parity)
        for fname, src in (extra_files or {}).items():
            shutil.copyfile(src, tmp / fname)
        record_files(info, tmp, [g["file"] for g in graphs.values()] + list(extra_files or {}))
        write_manifest(tmp, info)
        total = sum((tmp / f).stat().st_size for f in list(info["files"]) + [MANIFEST]) / 1e6
        if max_mb is not None and total > max_mb:
            raise ExportError(f"the package is {total:.1f} MB, over the {max_mb} MB limit "
                              f"(try --weights fp16 or a smaller size)")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def export_run(run_dir, out_dir, which: str = "best", name: str | None = None, weights: str = "fp32",
               max_mb: float | None = MAX_PACKAGE_MB) -> dict:
    """A trainer run directory (best.pt / latest.pt, log.jsonl, metrics.json, directions.json) -> package."""
    from .model import load_checkpoint
    run_dir = Path(run_dir)
    if run_dir.is_file():
        ckpt_path, run_dir = run_dir, run_dir.parent
    else:
        ckpt_path = run_dir / f"{which}.pt"
        if not ckpt_path.exists():
            other = run_dir / ("latest.pt" if which == "best" else "best.pt")
            if not other.exists():
                raise ExportError(f"{run_dir}: no {which}.pt or {other.name} checkpoint")
            ckpt_path = other
    model, ckpt = load_checkpoint(ckpt_path)
    training = {k: _jsonable(v) for k, v in ckpt.items() if k not in ("format",)}
    training["checkpoint"] = ckpt_path.name
    training["run"] = run_dir.name
    attributes, directions = load_directions(run_dir / "directions.json", model.z_size)
    companions = {"metrics.json": "metrics.json", "config.json": "training_config.json",
                  "MODEL_CARD.md": "MODEL_CARD.md"}
    extra = {dst: run_dir / src for src, dst in companions.items() if (run_dir / src).is_file()}
    return write_package(model, out_dir, name=name, weights=weights, training=training,
                         metrics=summarize_metrics(run_dir), attributes=attributes, directions=directions,
                         max_mb=max_mb, extra_files=extra)


# --------------------------------------------------------------------------------------------- CLI
def add_parser(subparsers) -> None:
    """Registers `export` with the export_onnx dispatcher."""
    p = subparsers.add_parser("export", help="export a training run to an ONNX model package")
    p.add_argument("run", help="run directory (best.pt / latest.pt) or a checkpoint file")
    p.add_argument("--out", required=True, help="package directory to write, e.g. bridge/models/mel_2bar")
    p.add_argument("--which", default="best", choices=["best", "latest"])
    p.add_argument("--name", default=None, help="model name in model.json (default: the --out folder name)")
    p.add_argument("--weights", default="fp32", choices=["fp32", "fp16"],
                   help="weight storage in the .onnx files (compute is float32 either way)")
    p.add_argument("--max-mb", type=float, default=MAX_PACKAGE_MB,
                   help="fail when the package is larger (0 = no limit)")
    p.set_defaults(func=_main_export)


register = add_parser


def _main_export(args) -> int:
    info = export_run(args.run, args.out, which=args.which, name=args.name, weights=args.weights,
                      max_mb=args.max_mb or None)
    size = sum((Path(args.out) / f).stat().st_size for f in info["files"]) / 1e6
    print(json.dumps({"package": str(args.out), "name": info["name"], "graphs": list(info["graphs"]),
                      "megabytes": round(size, 2), "parity_max_abs_diff": info["export"]["parity_max_abs_diff"]}))
    return 0
