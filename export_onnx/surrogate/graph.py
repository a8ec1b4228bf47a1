"""The surrogate encoder as an ONNX graph (`surrogate_encoder.onnx`), checked against torch."""
from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bridge.runtime.package import OPTIONAL_GRAPH_IO, SURROGATE_ROLE

from .encoder import SurrogateEncoder

ROLE = SURROGATE_ROLE
GRAPH_FILE = f"{ROLE}.onnx"
OPSET = 17
TOLERANCE = 1e-4


class _Graph(nn.Module):
    def __init__(self, surrogate):
        super().__init__()
        self.surrogate = surrogate

    def forward(self, inputs):
        return self.surrogate(inputs)


def _example(surrogate: SurrogateEncoder, batch: int, rng: np.random.Generator) -> np.ndarray:
    toks = rng.integers(0, surrogate.input_size, size=(batch, surrogate.num_steps))
    return np.eye(surrogate.input_size, dtype=np.float32)[toks]


def export_surrogate_graph(surrogate: SurrogateEncoder, path, verify: bool = True, weights: str = "fp32") -> dict:
    """Writes the surrogate as an ONNX graph (inputs `inputs (B, steps, classes)`; outputs `mu`,
    `sigma` (B, z)).

    Args:
      surrogate: the encoder (moved to the CPU, eval mode).
      path: the .onnx file to write.
      verify: run the graph in onnxruntime at batch sizes 1 and 3 against torch.
      weights: "fp32" | "fp16" (the package's storage: the surrogate's weights are rounded to
        float16 and stored so; compute stays float32).

    Returns:
      Its manifest entry: file, inputs, outputs, track, weights, and with verify
      parity_max_abs_diff.

    Raises:
      RuntimeError: onnxruntime and torch differ by more than TOLERANCE.
    """
    import onnx
    import onnxruntime as ort
    from ..export import round_weights_fp16, set_io_shapes, to_fp16_storage
    path = Path(path)
    surrogate = surrogate.cpu().eval()
    if weights == "fp16":
        round_weights_fp16(surrogate)
    (in_name,), out_names = OPTIONAL_GRAPH_IO[ROLE]
    inputs = {in_name: ["B", surrogate.num_steps, surrogate.input_size]}
    outputs = {name: ["B", surrogate.z_size] for name in out_names}
    example = torch.from_numpy(_example(surrogate, 2, np.random.default_rng(0)))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(_Graph(surrogate), (example,), str(path), input_names=list(inputs),
                          output_names=list(outputs), dynamic_axes={k: {0: "B"} for k in (*inputs, *outputs)},
                          opset_version=OPSET, do_constant_folding=True, dynamo=False)
    set_io_shapes(path, inputs, outputs)
    if weights == "fp16":
        to_fp16_storage(path)
    onnx.checker.check_model(str(path), full_check=True)
    entry = {"file": path.name, "inputs": inputs, "outputs": outputs, "track": surrogate.track, "weights": weights}
    if verify:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.log_severity_level = 3
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(1)
        diff = 0.0
        for b in (1, 3):
            x = _example(surrogate, b, rng)
            got = sess.run(["mu", "sigma"], {"inputs": x})
            with torch.no_grad():
                want = surrogate(torch.from_numpy(x))
            for g, w in zip(got, want):
                diff = max(diff, float(np.abs(g - w.numpy()).max()))
        if not diff <= TOLERANCE:
            raise RuntimeError(f"{path.name}: onnxruntime differs from torch by {diff:.3g} > {TOLERANCE}")
        entry["parity_max_abs_diff"] = diff
    return entry
