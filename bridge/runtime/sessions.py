"""onnxruntime sessions: which execution providers, which session options, opening a graph.

Every graph the runtime runs (the model's four, an optional surrogate encoder) is opened here, so
they all get the same threading and logging settings. onnxruntime is imported on first use.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

from ..core.errors import ModelError

PROVIDERS = ("auto", "cpu", "cuda")
GPU_HINT = ("for CUDA install the gpu extra on a machine with an NVIDIA GPU: pip install -e '.[gpu]' "
            "(onnxruntime-gpu; docs/performance.md, GPU)")

log = logging.getLogger("bridge.sessions")
_said_cpu = False


def ort():
    """The onnxruntime module (imported here, on first use)."""
    import onnxruntime
    return onnxruntime


def pick_providers(provider: str) -> list[str]:
    """onnxruntime execution providers for a provider name.

    Args:
        provider: "auto" (CUDA when onnxruntime has it, else CPU), "cpu" or "cuda".

    Returns:
        The provider list for InferenceSession, best first.

    Raises:
        ValueError: an unknown provider name. "cuda" without CUDA warns (RuntimeWarning) and
            returns the CPU provider.
    """
    available = ort().get_available_providers()
    if provider not in PROVIDERS:
        raise ValueError(f"provider must be 'auto', 'cpu' or 'cuda', got {provider!r}")
    if provider == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if provider == "cuda":
        warnings.warn("CUDA was asked for but onnxruntime has no CUDAExecutionProvider here "
                      f"(available: {', '.join(available)}); running on the CPU", RuntimeWarning, stacklevel=3)
    else:
        _say_cpu(available)
    return ["CPUExecutionProvider"]


def _say_cpu(available) -> None:
    """Log once per process that "auto" fell back to the CPU, and how to get CUDA."""
    global _said_cpu
    if not _said_cpu:
        _said_cpu = True
        log.info("no CUDAExecutionProvider in this onnxruntime (available: %s): models run on the CPU; %s",
                 ", ".join(available), GPU_HINT)


def session_options(threads: int):
    """SessionOptions for a live set: `threads` intra-op threads that do not spin when idle,
    sequential execution, all graph optimisations, errors only in the log."""
    rt = ort()
    so = rt.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = rt.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = rt.GraphOptimizationLevel.ORT_ENABLE_ALL
    # a live set shares the machine with a DAW: do not let idle pool threads spin
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


def open_session(path: Path, providers: list[str], threads: int):
    """An InferenceSession on one graph file.

    Raises:
        ModelError: onnxruntime cannot load the graph (its first message line is kept).
    """
    try:
        return ort().InferenceSession(str(path), sess_options=session_options(threads), providers=providers)
    except Exception as e:  # onnxruntime raises its own pybind exception types
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{path}: onnxruntime cannot load the graph ({msg})") from None
