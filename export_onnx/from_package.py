"""Read a shipped model package's weights back into a torch MusicVAE (`train --init-from`).

Training continues on any machine from what is in git: runs/ and intermediate checkpoints are not
kept, the package is. The exporter's graphs hold every weight, in three forms:

- named initializers (`model.encoder.mu.kernel`, `model.decoder.core.z_to_initial_state.bias`, ...)
  for the Dense layers the tracer saw as parameters;
- ONNX `LSTM` nodes (encoder, conductor): W (dirs, 4H, I), R (dirs, 4H, H), B (dirs, 8H) in ONNX's gate
  order i, o, f, c, with the TF forget bias folded into the input bias (export_onnx.lstm.torch_weights);
- the decoder step graph written by export_onnx.step_graph: `c{k}l{l}_kernel` (gate order i, f, o, j,
  forget bias folded into `c{k}l{l}_bias`), layer 1's previous-token rows `c{k}l0_t{t}_rows`, and the
  conditioning rows + bias of layer 1 moved into decoder_init's `cond_proj` output (format 2), which
  is linear in `cond`, so it is read back by running decoder_init on zeros and on unit vectors.

fp16 packages store initializers as `NAME__fp16` + a Cast to `NAME`; they are read as float32 (the
weights were rounded to fp16 at export, so the torch model gets exactly the shipped numbers).
`read_package_model` returns a model whose graphs, exported again, equal the package's (test:
tests/export_onnx/test_from_package.py).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .configs import ModelSize, get_config
from .lstm import FORGET_BIAS
from .model import MusicVAE


class PackageReadError(ValueError):
    pass


def _graph_values(path: Path) -> tuple[dict, list]:
    """(name -> float32/int array for every initializer and Constant, fp16 storage resolved), nodes."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(str(path))
    values = {}
    for init in m.graph.initializer:
        values[init.name] = numpy_helper.to_array(init)
    for node in m.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(a.t)
        elif node.op_type == "Cast" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]].astype(np.float32)
    return {k: (v.astype(np.float32) if v.dtype == np.float16 else v) for k, v in values.items()}, list(m.graph.node)


def _lstm_nodes(values: dict, nodes: list) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out = []
    for node in nodes:
        if node.op_type == "LSTM":
            try:
                out.append(tuple(values[node.input[i]] for i in (1, 2, 3)))
            except KeyError as e:
                raise PackageReadError(f"LSTM node {node.name}: weight {e} is not a constant") from None
    return out


def _tf_cell_from_onnx(W: np.ndarray, R: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One direction of an ONNX LSTM (gates i, o, f, c; forget bias folded) -> TF kernel, bias (i, j, f, o)."""
    H = R.shape[-1]
    i, o, f, c = (slice(g * H, (g + 1) * H) for g in range(4))
    wr = np.concatenate([W, R], axis=1)              # (4H, I + H)
    b = B[:4 * H] + B[4 * H:]
    kernel = np.concatenate([wr[i], wr[c], wr[f], wr[o]], axis=0).T
    bias = np.concatenate([b[i], b[c], b[f] - FORGET_BIAS, b[o]])
    return kernel, bias


def _tf_from_step(kern: np.ndarray, bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Step-graph gate order i, f, o, j (forget bias folded) -> TF i, j, f, o."""
    U = kern.shape[1] // 4
    i, f, o, j = (slice(g * U, (g + 1) * U) for g in range(4))
    k = np.concatenate([kern[:, i], kern[:, j], kern[:, f], kern[:, o]], axis=1)
    if bias is None:
        return k, None
    return k, np.concatenate([bias[i], bias[j], bias[f] - FORGET_BIAS, bias[o]])


def _set(param: torch.nn.Parameter, value: np.ndarray, what: str) -> None:
    if tuple(param.shape) != tuple(value.shape):
        raise PackageReadError(f"{what}: package has shape {tuple(value.shape)}, the model {tuple(param.shape)}")
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.array(value, dtype=np.float32)))


def _load_bidirectional(lstm, W, R, B, what: str) -> None:
    for d, cell in enumerate((lstm.fw, lstm.bw)):
        k, b = _tf_cell_from_onnx(W[d], R[d], B[d])
        _set(cell.kernel, k, f"{what}.{'fw' if d == 0 else 'bw'}.kernel")
        _set(cell.bias, b, f"{what}.{'fw' if d == 0 else 'bw'}.bias")


def _load_named(model: MusicVAE, values: dict, prefix: str) -> set[str]:
    """Copy every parameter whose name (as the tracer wrote it: `model.<param>`) is in values."""
    done = set()
    for name, p in model.named_parameters():
        if name.startswith(prefix) and f"model.{name}" in values:
            _set(p, values[f"model.{name}"], name)
            done.add(name)
    return done


def _cond_projection(path: Path, cond_size: int) -> tuple[np.ndarray, np.ndarray]:
    """decoder_init's cond_proj = cond @ K + b, read by running the graph on 0 and unit vectors."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    if "cond_proj" not in names:
        raise PackageReadError(f"{path.name}: no cond_proj output (format_version 1 packages are not supported)")
    probe = np.concatenate([np.zeros((1, cond_size), np.float32), np.eye(cond_size, dtype=np.float32)])
    proj = sess.run(["cond_proj"], {"cond": probe})[0].astype(np.float64)
    bias = proj[0]
    return (proj[1:] - bias).astype(np.float32), bias.astype(np.float32)


def read_package_model(package_dir) -> tuple[MusicVAE, dict]:
    """A torch MusicVAE holding a package's weights, and the package's model.json.

    Args:
        package_dir: a model package directory (bridge/models/<name>).
    Returns:
        (model in train mode, manifest dict).
    Raises:
        PackageReadError: the package's graphs do not fit its declared config and size, or a weight
            cannot be found.
    """
    package_dir = Path(package_dir)
    manifest = json.loads((package_dir / "model.json").read_text())
    arch = (manifest.get("training") or {}).get("architecture")
    if arch is not None:
        raise PackageReadError(f"{package_dir}: a {arch} package (export_onnx.latent_chain), not a MusicVAE "
                               f"that `train` continues; retrain it with `train-chain`")
    config = get_config(manifest["config"])
    size = ModelSize(**{k: v for k, v in manifest["size"].items() if k != "name"})
    model = MusicVAE(config, size)
    model.size_name = manifest["size"].get("name", "custom")
    dec = model.decoder
    loaded: set[str] = set()

    values, nodes = _graph_values(package_dir / "encoder.onnx")
    loaded |= _load_named(model, values, "encoder.")
    lstms = _lstm_nodes(values, nodes)
    enc_lstms = [model.encoder.bar_lstm, model.encoder.lstm] if config.hierarchical else [model.encoder.lstm]
    if len(lstms) != len(enc_lstms):
        raise PackageReadError(f"encoder.onnx has {len(lstms)} LSTM nodes, the model {len(enc_lstms)}")
    for lstm, (W, R, B) in zip(enc_lstms, lstms):
        _load_bidirectional(lstm, W, R, B, "encoder")
        loaded |= {n for n, p in model.named_parameters() if any(p is q for q in lstm.parameters())}

    if config.hierarchical:
        values, nodes = _graph_values(package_dir / "conductor.onnx")
        loaded |= _load_named(model, values, "decoder.conductor_initial_state.")
        lstms = _lstm_nodes(values, nodes)
        cells = dec.conductor_lstm.cells
        if len(lstms) != len(cells):
            raise PackageReadError(f"conductor.onnx has {len(lstms)} LSTM nodes, the model {len(cells)} layers")
        for l, (cell, (W, R, B)) in enumerate(zip(cells, lstms)):
            k, b = _tf_cell_from_onnx(W[0], R[0], B[0])
            _set(cell.kernel, k, f"conductor layer {l} kernel")
            _set(cell.bias, b, f"conductor layer {l} bias")
            loaded |= {f"decoder.conductor_lstm.cells.{l}.kernel", f"decoder.conductor_lstm.cells.{l}.bias"}

    values, _ = _graph_values(package_dir / "decoder_init.onnx")
    loaded |= _load_named(model, values, "decoder.")
    proj_k, proj_b = _cond_projection(package_dir / "decoder_init.onnx", dec.cond_size)

    values, _ = _graph_values(package_dir / "decoder_step.onnx")
    from .step_graph import step_cores
    parts = step_cores(dec)
    if parts is None:
        raise PackageReadError("the decoder is not made of LstmCoreDecoders: no step graph to read")
    prefix = dict(dec.named_modules())
    for k, (core, (a, b)) in enumerate(parts):
        core_name = "decoder." + next(n for n, m in prefix.items() if m is core)
        U = core.units
        for l, cell in enumerate(core.lstm.cells):
            p = f"c{k}l{l}"
            if l == 0:
                n_k = b - a
                rows = [values[f"{p}_t{t}_rows"] for t in range(len(core.num_classes))]
                cond_rows = proj_k[:, k * 4 * U:(k + 1) * 4 * U]
                kern = np.concatenate(rows + [cond_rows, values[f"{p}_kernel"]], axis=0)
                if kern.shape[0] != n_k + dec.cond_size + U:
                    raise PackageReadError(f"{p}: layer-1 kernel rows {kern.shape[0]} != {n_k + dec.cond_size + U}")
                bias = proj_b[k * 4 * U:(k + 1) * 4 * U]
            else:
                kern, bias = values[f"{p}_kernel"], values[f"{p}_bias"]
            tk, tb = _tf_from_step(kern, bias)
            _set(cell.kernel, tk, f"{core_name} layer {l} kernel")
            _set(cell.bias, tb, f"{core_name} layer {l} bias")
            loaded |= {f"{core_name}.lstm.cells.{l}.kernel", f"{core_name}.lstm.cells.{l}.bias"}
        _set(core.output_projection.kernel, values[f"c{k}_out_kernel"], f"{core_name} output kernel")
        _set(core.output_projection.bias, values[f"c{k}_out_bias"], f"{core_name} output bias")
        loaded |= {f"{core_name}.output_projection.kernel", f"{core_name}.output_projection.bias"}

    missing = [n for n, _ in model.named_parameters() if n not in loaded]
    if missing:
        raise PackageReadError(f"{package_dir}: no weights found for {', '.join(missing)}")
    model.train()
    return model, manifest


def training_history(manifest: dict) -> dict:
    """Cumulative training across resumes recorded in a package: steps, examples, wall seconds."""
    t = manifest.get("training") or {}
    hist = t.get("history")
    if hist:
        return {"steps": sum(h.get("steps", 0) for h in hist), "examples": sum(h.get("examples", 0) for h in hist),
                "wall_time": sum(h.get("wall_time", 0.0) for h in hist), "runs": len(hist)}
    steps = int(t.get("step", 0))
    batch = int((t.get("recipe") or {}).get("batch_size", 0))
    return {"steps": steps, "examples": steps * batch, "wall_time": float(t.get("wall_time", 0.0)), "runs": 1 if steps else 0}
