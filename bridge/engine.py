"""The runtime: a model package (model.json + ONNX graphs) on onnxruntime, with a batched decode loop.

    m = bridge.load_model("mel_2bar")            # or a package directory / its model.json
    z = m.encode([notes_a, notes_b])              # (B, z) posterior means
    seqs = m.decode(z, temperature=0.0)           # list of note lists (argmax at temperature 0)

The decode loop runs the step graph once per output step for the whole batch: every interpolation
point, palette cell or sample is one row of the same batch. Buffers (previous one-hot, conditioning,
logits, LSTM states, sampling noise, tokens) are allocated once per batch size and reused; with IO
binding the step graph reads and writes them in place and the two state buffers ping-pong, so a
step allocates nothing on the Python side. Hierarchical models initialise every bar's decoder state
in one batched `decoder_init` call.

A `Model` is safe to share between threads: calls are serialised by a lock (the buffers are shared).
This module never imports torch.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np

from . import latent
from .codecs import CodecError, SequenceCodec
from .notes import STEPS_PER_BAR, Note

FORMAT = "latent-bridge-model"
FORMAT_VERSION = 2   # 1 and 2 are read; 2: decoder_init also outputs cond_proj, which decoder_step reads
MODELS_DIR = Path(__file__).resolve().parent / "models"
MODELS_ENV = "LATENT_BRIDGE_MODELS"   # extra package directories, os.pathsep-separated

REQUIRED_KEYS = ("format", "format_version", "name", "kind", "hierarchical", "bars", "steps_per_bar",
                 "num_steps", "z_size", "input_size", "tracks", "decoder", "graphs", "files")
GRAPH_IO = {
    "encoder": (("inputs",), ("mu", "sigma")),
    "conductor": (("z",), ("embeddings",)),
    "decoder_init": (("cond",), ("state_c", "state_h")),
    "decoder_step": (("prev", "cond", "state_c", "state_h"), ("logits", "new_state_c", "new_state_h")),
}
# format_version >= 2: the conditioning's part of the step's layer-1 gates is computed once per bar
GRAPH_IO_V2 = {
    **GRAPH_IO,
    "decoder_init": (("cond",), ("state_c", "state_h", "cond_proj")),
    "decoder_step": (("prev", "cond_proj", "state_c", "state_h"), ("logits", "new_state_c", "new_state_h")),
}
MAX_CACHED_BATCH_SIZES = 8


def graph_io(info: dict) -> dict:
    """role -> (input names, output names) for a manifest's format_version."""
    return GRAPH_IO_V2 if info.get("format_version", 1) >= 2 else GRAPH_IO


class ModelError(Exception):
    """A model package that cannot be used: missing, corrupt, or not matching its manifest."""


# ----------------------------------------------------------------------------------------------
# packages on disk

def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def _models_dirs(extra=None) -> list[Path]:
    dirs: list[Path] = []
    if extra is not None:
        dirs.extend(Path(p) for p in ([extra] if isinstance(extra, (str, os.PathLike)) else extra))
    env = os.environ.get(MODELS_ENV)
    if env:
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    dirs.append(MODELS_DIR)
    seen, out = set(), []
    for d in dirs:
        key = str(d.resolve()) if d.exists() else str(d)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def find_model(name_or_path, models_dirs=None) -> Path:
    """The package directory for a name (searched in `models_dirs`, $LATENT_BRIDGE_MODELS and the
    shipped bridge/models/) or for a path to a package directory or its model.json."""
    p = Path(name_or_path)
    if p.name == "model.json" and p.is_file():
        return p.parent
    if p.is_dir():
        if not (p / "model.json").is_file():
            raise ModelError(f"{p} is not a model package: it has no model.json")
        return p
    name = str(name_or_path)
    dirs = _models_dirs(models_dirs)
    if os.sep not in name and "/" not in name:
        for d in dirs:
            if (d / name / "model.json").is_file():
                return d / name
    known = sorted({m["name"] for m in list_models(dirs)})
    raise ModelError(f"no model package {name!r} (searched {', '.join(str(d) for d in dirs)}); "
                     f"available: {', '.join(known) if known else 'none'}")


def read_manifest(package_dir) -> dict:
    """Parse and check model.json (keys, format, graph table); raises ModelError."""
    package_dir = Path(package_dir)
    path = package_dir / "model.json"
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{package_dir}: missing file model.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"{path}: not a readable JSON manifest ({e})") from None
    if not isinstance(info, dict):
        raise ModelError(f"{path}: the manifest must be a JSON object")
    if info.get("format") != FORMAT:
        raise ModelError(f"{path}: not a latent-bridge model (format={info.get('format')!r})")
    missing = [k for k in REQUIRED_KEYS if k not in info]
    if missing:
        raise ModelError(f"{path}: manifest lacks {', '.join(missing)}")
    if not isinstance(info["format_version"], int) or info["format_version"] > FORMAT_VERSION:
        raise ModelError(f"{path}: format_version {info['format_version']!r} is newer than this runtime "
                         f"understands ({FORMAT_VERSION}); update latent-bridge")
    roles = ["encoder", "decoder_init", "decoder_step"] + (["conductor"] if info["hierarchical"] else [])
    graphs = info["graphs"]
    if not isinstance(graphs, dict):
        raise ModelError(f"{path}: 'graphs' must be an object")
    for role in roles:
        g = graphs.get(role)
        if not isinstance(g, dict) or not isinstance(g.get("file"), str):
            raise ModelError(f"{path}: graph {role!r} is missing from the manifest")
        ins, outs = graph_io(info)[role]
        if list(g.get("inputs", {})) != list(ins) or list(g.get("outputs", {})) != list(outs):
            raise ModelError(f"{path}: graph {role!r} must have inputs {list(ins)} and outputs {list(outs)}")
        if g["file"] not in info["files"]:
            raise ModelError(f"{path}: graph file {g['file']} has no sha256 in 'files'")
    try:
        codec = SequenceCodec.from_spec(info["tracks"])
    except (CodecError, KeyError, TypeError) as e:
        raise ModelError(f"{path}: bad track specs ({e})") from None
    if codec.input_size != info["input_size"]:
        raise ModelError(f"{path}: input_size {info['input_size']} does not match the tracks ({codec.input_size})")
    if info["num_steps"] != info["bars"] * info["steps_per_bar"]:
        raise ModelError(f"{path}: num_steps != bars * steps_per_bar")
    return info


def verify_files(package_dir, info: dict) -> None:
    """Every file listed in the manifest exists and has its sha256; raises ModelError."""
    package_dir = Path(package_dir)
    files = info["files"]
    if not isinstance(files, dict):
        raise ModelError(f"{package_dir}/model.json: 'files' must map file names to sha256")
    for fname, digest in files.items():
        p = package_dir / fname
        if Path(fname).name != fname:
            raise ModelError(f"{package_dir}/model.json: file name {fname!r} must not contain a path")
        if not p.is_file():
            raise ModelError(f"{package_dir}: missing file {fname}")
        actual = sha256_file(p)
        if actual != digest:
            raise ModelError(f"{p}: sha256 mismatch (the file is corrupt or was changed): "
                             f"manifest {str(digest)[:12]}..., file {actual[:12]}...")


def list_models(models_dir=None) -> list[dict]:
    """Model packages found in `models_dir` (a directory or a list; default: $LATENT_BRIDGE_MODELS
    and bridge/models/). Only manifests are read. One dict per package, sorted by name: name, path,
    kind, bars, hierarchical, z_size, attributes; a package whose manifest is broken has `error`."""
    dirs = _models_dirs(models_dir) if models_dir is None else [Path(models_dir)] if isinstance(
        models_dir, (str, os.PathLike)) else [Path(d) for d in models_dir]
    out, seen = [], set()
    for d in dirs:
        if not d.is_dir():
            continue
        for pkg in sorted(p for p in d.iterdir() if (p / "model.json").is_file()):
            if pkg.name in seen:
                continue  # an earlier directory shadows a later one, as in find_model
            seen.add(pkg.name)
            try:
                info = read_manifest(pkg)
                out.append({"name": pkg.name, "path": str(pkg), "kind": info["kind"], "bars": info["bars"],
                            "hierarchical": info["hierarchical"], "z_size": info["z_size"],
                            "attributes": sorted(info.get("attributes") or {})})
            except ModelError as e:
                out.append({"name": pkg.name, "path": str(pkg), "error": str(e)})
    return sorted(out, key=lambda m: m["name"])


# ----------------------------------------------------------------------------------------------
# onnxruntime sessions

def _ort():
    import onnxruntime
    return onnxruntime


def _pick_providers(provider: str) -> list[str]:
    ort = _ort()
    available = ort.get_available_providers()
    if provider not in ("auto", "cpu", "cuda"):
        raise ValueError(f"provider must be 'auto', 'cpu' or 'cuda', got {provider!r}")
    if provider == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if provider == "cuda":
        warnings.warn("CUDA was asked for but onnxruntime has no CUDAExecutionProvider here "
                      f"(available: {', '.join(available)}); running on the CPU", RuntimeWarning, stacklevel=3)
    return ["CPUExecutionProvider"]


def _session_options(threads: int):
    ort = _ort()
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # a live set shares the machine with a DAW: do not let idle pool threads spin
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


def _open_session(path: Path, providers: list[str], threads: int):
    ort = _ort()
    try:
        return ort.InferenceSession(str(path), sess_options=_session_options(threads), providers=providers)
    except Exception as e:  # onnxruntime raises its own pybind exception types
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{path}: onnxruntime cannot load the graph ({msg})") from None


# ----------------------------------------------------------------------------------------------
# the decode loop

class _Loop:
    """Everything the decode loop needs for one batch size, allocated once."""

    def __init__(self, model: "Model", batch: int):
        m = model
        f32 = np.float32
        self.batch = batch
        self.prev = np.zeros((batch, m.input_size), f32)
        self.cond = np.zeros((batch, m.step_cond_size), f32)   # cond, or cond_proj (format 2)
        self.logits = np.zeros((batch, m.input_size), f32)
        self.scores = np.zeros((batch, m.input_size), f32)
        tracks = len(m.offsets) - 1
        # sampling noise for several steps at once (the same draws, in the same order, as one
        # (B, input_size) draw per step; fewer numpy calls per step)
        self.noise_steps = max(1, min(16, (1 << 18) // max(1, batch * m.input_size)))
        self.noise = np.zeros((self.noise_steps, batch, m.input_size), f32)
        self.tokens = np.zeros((batch, m.num_steps, tracks), np.int64)
        self.tok = np.zeros((tracks, batch), np.int64)          # this step's tokens, track-major
        self.hot = np.zeros((tracks, batch), np.int64)          # their flat indices in prev
        self.base = (m.offsets[:-1, None] + np.arange(batch)[None, :] * m.input_size).astype(np.int64)
        self.prev_flat = self.prev.reshape(-1)                  # a view
        shape = (m.layers_total, batch, m.units)
        self.host_c = np.zeros(shape, f32)      # initial states of a bar, on the host
        self.host_h = np.zeros(shape, f32)
        self.binding = None
        if m.use_io_binding:
            self._bind(m, shape)

    def _bind(self, m: "Model", shape):
        ort = _ort()
        sess = m.sessions["decoder_step"]
        dev = "cuda" if m.provider == "cuda" else "cpu"
        if dev == "cpu":
            # states live in numpy arrays: the graph reads and writes them in place
            self.c = [self.host_c, np.zeros(shape, np.float32)]
            self.h = [self.host_h, np.zeros(shape, np.float32)]
            vals_c = [ort.OrtValue.ortvalue_from_numpy(a) for a in self.c]
            vals_h = [ort.OrtValue.ortvalue_from_numpy(a) for a in self.h]
            cond = ort.OrtValue.ortvalue_from_numpy(self.cond)
        else:
            vals_c = [ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, "cuda", 0) for _ in range(2)]
            vals_h = [ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, "cuda", 0) for _ in range(2)]
            cond = ort.OrtValue.ortvalue_from_shape_and_type(self.cond.shape, np.float32, "cuda", 0)
        self.vals_c, self.vals_h, self.cond_val = vals_c, vals_h, cond
        prev = ort.OrtValue.ortvalue_from_numpy(self.prev)
        logits = ort.OrtValue.ortvalue_from_numpy(self.logits)
        self.binding = []
        for k in range(2):  # step k % 2 reads state buffer k and writes buffer 1 - k
            b = sess.io_binding()
            b.bind_ortvalue_input("prev", prev)
            b.bind_ortvalue_input(m.step_cond_name, cond)
            b.bind_ortvalue_input("state_c", vals_c[k])
            b.bind_ortvalue_input("state_h", vals_h[k])
            b.bind_ortvalue_output("logits", logits)
            b.bind_ortvalue_output("new_state_c", vals_c[1 - k])
            b.bind_ortvalue_output("new_state_h", vals_h[1 - k])
            self.binding.append(b)

    def load_bar_state(self, c: np.ndarray, h: np.ndarray, cond: np.ndarray):
        """Set the states (read by the next step) and the conditioning for a new bar."""
        np.copyto(self.cond, cond)
        if self.binding is None:
            np.copyto(self.host_c, c)
            np.copyto(self.host_h, h)
        elif self.vals_c[0].device_name().lower() == "cpu":
            np.copyto(self.c[0], c)
            np.copyto(self.h[0], h)
        else:
            self.vals_c[0].update_inplace(np.ascontiguousarray(c, dtype=np.float32))
            self.vals_h[0].update_inplace(np.ascontiguousarray(h, dtype=np.float32))
            self.cond_val.update_inplace(self.cond)


class Model:
    """A loaded model package. See the module docstring and docs/architecture.md."""

    def __init__(self, package_dir, provider: str = "auto", threads: int = 1, io_binding: bool | None = None,
                 verify: bool = True):
        self.path = Path(package_dir)
        info = read_manifest(self.path)
        if verify:
            verify_files(self.path, info)
        self.info = info
        self.name: str = info["name"]
        self.kind: str = info["kind"]
        self.hierarchical: bool = bool(info["hierarchical"])
        self.bars: int = int(info["bars"])
        self.steps_per_bar: int = int(info["steps_per_bar"])
        self.num_steps: int = int(info["num_steps"])
        self.z_size: int = int(info["z_size"])
        self.input_size: int = int(info["input_size"])
        self.codec = SequenceCodec.from_spec(info["tracks"])
        self.num_classes = self.codec.num_classes
        self.offsets = np.concatenate([[0], np.cumsum(self.num_classes)]).astype(np.int64)
        self._segments = [slice(int(a), int(b)) for a, b in zip(self.offsets[:-1], self.offsets[1:])]
        dec = info["decoder"]
        self.units = int(dec["units"])
        self.cond_size = int(dec["cond_size"])
        providers = _pick_providers(provider)
        self.threads = threads
        self.sessions = {}
        for role, g in info["graphs"].items():
            if role == "conductor" and not self.hierarchical:
                continue
            if role not in GRAPH_IO:
                continue
            self.sessions[role] = _open_session(self.path / g["file"], providers, threads)
        used = self.sessions["decoder_step"].get_providers()
        if "CUDAExecutionProvider" in providers and "CUDAExecutionProvider" not in used:
            warnings.warn("onnxruntime could not start CUDA for this model; running on the CPU",
                          RuntimeWarning, stacklevel=2)
        self.provider = "cuda" if "CUDAExecutionProvider" in used else "cpu"
        self._check_graphs()
        self.layers_total = self._state_shape()[0]   # L: layers x core decoders, fixed in the graph
        # what decoder_step reads besides prev and the states: cond (format 1) or cond_proj (format 2)
        self.step_cond_name = graph_io(info)["decoder_step"][0][1]
        width = {i.name: i.shape for i in self.sessions["decoder_step"].get_inputs()}[self.step_cond_name][1]
        if not isinstance(width, int) or (self.step_cond_name == "cond" and width != self.cond_size):
            raise ModelError(f"{self.path}: decoder_step input {self.step_cond_name} has width {width!r}")
        self.step_cond_size = width
        self._init_outputs = list(graph_io(info)["decoder_init"][1])
        self.use_io_binding = True if io_binding is None else bool(io_binding)
        self._loops: OrderedDict[int, _Loop] = OrderedDict()
        self._lock = threading.RLock()

    # -- checks -------------------------------------------------------------------------------
    def _check_graphs(self):
        for role, sess in self.sessions.items():
            ins, outs = graph_io(self.info)[role]
            got_in = [i.name for i in sess.get_inputs()]
            got_out = [o.name for o in sess.get_outputs()]
            if sorted(got_in) != sorted(ins) or sorted(got_out) != sorted(outs):
                raise ModelError(f"{self.path / self.info['graphs'][role]['file']}: graph has inputs {got_in} "
                                 f"and outputs {got_out}; expected {list(ins)} and {list(outs)}")
        enc = {i.name: i.shape for i in self.sessions["encoder"].get_inputs()}["inputs"]
        if len(enc) != 3 or enc[1] != self.num_steps or enc[2] != self.input_size:
            raise ModelError(f"{self.path}: encoder input shape {enc} does not fit "
                             f"(B, {self.num_steps}, {self.input_size})")

    def _state_shape(self):
        shape = {i.name: i.shape for i in self.sessions["decoder_step"].get_inputs()}["state_c"]
        if len(shape) != 3 or not isinstance(shape[0], int) or shape[2] != self.units:
            raise ModelError(f"{self.path}: decoder_step state shape {shape} does not fit (L, B, {self.units})")
        return shape[0], shape[2]

    def __repr__(self):
        return f"Model({self.name!r}, kind={self.kind}, bars={self.bars}, z={self.z_size}, provider={self.provider})"

    # -- attributes ---------------------------------------------------------------------------
    @property
    def attributes(self) -> list[str]:
        """Names usable with `attribute()`: attribute vectors and named directions."""
        names = list(self.info.get("attributes") or {})
        names += [d["name"] for d in self.info.get("directions") or [] if d.get("name") not in names]
        return names

    def attribute_vector(self, name: str) -> np.ndarray:
        attrs = self.info.get("attributes") or {}
        if name in attrs:
            vec = attrs[name]["vector"] if isinstance(attrs[name], dict) else attrs[name]
        else:
            found = [d for d in self.info.get("directions") or [] if d.get("name") == name]
            if not found:
                raise KeyError(f"model {self.name} has no attribute {name!r}; it has: "
                               f"{', '.join(self.attributes) or 'none'}")
            vec = found[0]["vector"]
        vec = np.asarray(vec, dtype=np.float32)
        if vec.shape != (self.z_size,):
            raise ModelError(f"{self.path}: attribute {name!r} has {vec.shape} values, z has {self.z_size}")
        return vec

    def attribute(self, z, name: str, amount: float) -> np.ndarray:
        """z moved by `amount` along the attribute vector `name` (z + amount * vector)."""
        return latent.move(self._z(z), self.attribute_vector(name), amount)

    # -- notes <-> tokens ---------------------------------------------------------------------
    def notes_to_tokens(self, sequences) -> np.ndarray:
        """List of note lists (or one note list) -> (B, steps, tracks) int64 tokens. Notes past the
        model's length are dropped; pitches outside the range are folded by octaves (user input)."""
        seqs = self._sequences(sequences)
        return np.stack([self.codec.encode(list(s), self.num_steps, fold_octaves=True) for s in seqs])

    def tokens_to_notes(self, tokens, velocity: int = 100) -> list[list[Note]]:
        tokens = np.asarray(tokens)
        if tokens.ndim == 2:
            tokens = tokens[None]
        return [self.codec.decode(t, velocity=velocity) for t in tokens]

    @staticmethod
    def _sequences(sequences) -> list:
        if isinstance(sequences, np.ndarray):
            raise TypeError("expected note lists; use encode_tokens for token arrays")
        seqs = list(sequences)
        if not seqs:
            raise ValueError("expected at least one note list")
        if isinstance(seqs[0], Note):
            return [seqs]   # a single note list
        return seqs

    def _z(self, z) -> np.ndarray:
        z = np.asarray(z, dtype=np.float32)
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != self.z_size:
            raise ValueError(f"z must be (B, {self.z_size}) or ({self.z_size},), got {z.shape}")
        if not np.isfinite(z).all():
            raise ValueError("z contains NaN or infinity")
        return np.ascontiguousarray(z)

    # -- encode -------------------------------------------------------------------------------
    def encode_tokens(self, tokens, return_sigma: bool = False):
        """(B, steps, tracks) tokens -> (B, z) posterior means (and sigmas if asked)."""
        tokens = np.asarray(tokens)
        if tokens.ndim == 2:
            tokens = tokens[None]
        if tokens.ndim != 3 or tokens.shape[1:] != (self.num_steps, len(self.num_classes)):
            raise ValueError(f"tokens must be (B, {self.num_steps}, {len(self.num_classes)}), got {tokens.shape}")
        for k, n in enumerate(self.num_classes):
            col = tokens[..., k]
            if col.size and (col.min() < 0 or col.max() >= n):
                raise ValueError(f"track {k} tokens must be in 0..{n - 1}")
        onehot = self.codec.one_hot(tokens.astype(np.int64))
        with self._lock:
            mu, sigma = self.sessions["encoder"].run(None, {"inputs": onehot})
        return (mu, sigma) if return_sigma else mu

    def encode(self, sequences, return_sigma: bool = False):
        """List of note lists (or one note list) -> (B, z) posterior means."""
        return self.encode_tokens(self.notes_to_tokens(sequences), return_sigma=return_sigma)

    # -- decode -------------------------------------------------------------------------------
    def _loop(self, batch: int) -> _Loop:
        loop = self._loops.get(batch)
        if loop is None:
            loop = _Loop(self, batch)
            self._loops[batch] = loop
            while len(self._loops) > MAX_CACHED_BATCH_SIZES:
                self._loops.popitem(last=False)
        else:
            self._loops.move_to_end(batch)
        return loop

    def _choose(self, loop: _Loop, temperature: float, rng, t: int):
        """Pick the tokens of step t from loop.logits (per-track argmax, or Gumbel-max sampling
        = a categorical draw from softmax(logits / temperature) per track) and write loop.prev."""
        src = loop.logits
        if temperature > 0.0:
            j = t % loop.noise_steps
            if j == 0:   # draw the noise of the next noise_steps steps (fewer at the end)
                u = loop.noise[:min(loop.noise_steps, self.num_steps - t)]
                rng.random(dtype=np.float32, out=u)
                np.maximum(u, np.float32(1e-30), out=u)
                np.log(u, out=u)
                np.negative(u, out=u)
                np.log(u, out=u)                  # log(-log u) = -gumbel
            np.divide(loop.logits, np.float32(temperature), out=loop.scores)
            np.subtract(loop.scores, loop.noise[j], out=loop.scores)
            src = loop.scores
        for k, seg in enumerate(self._segments):
            np.argmax(src[:, seg], axis=1, out=loop.tok[k])
        loop.tokens[:, t, :] = loop.tok.T
        np.add(loop.tok, loop.base, out=loop.hot)
        loop.prev.fill(0.0)
        loop.prev_flat[loop.hot] = 1.0

    def _init_bars(self, cond: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """decoder_init on the conditioning -> (what decoder_step reads: cond_proj (format 2) or cond
        itself, initial state_c, initial state_h)."""
        init = self.sessions["decoder_init"].run(self._init_outputs, {"cond": cond})
        return (init[2] if len(init) > 2 else cond), init[0], init[1]

    def _step(self, loop: _Loop, parity: int):
        if loop.binding is not None:
            self.sessions["decoder_step"].run_with_iobinding(loop.binding[parity])
            return
        logits, c, h = self.sessions["decoder_step"].run(
            None, {"prev": loop.prev, self.step_cond_name: loop.cond, "state_c": loop.host_c, "state_h": loop.host_h})
        np.copyto(loop.logits, logits)
        loop.host_c, loop.host_h = c, h   # fresh outputs; the runtime owns them

    def decode_tokens(self, z, temperature: float = 0.0, seed=None) -> np.ndarray:
        """(B, z) -> (B, steps, tracks) int64 tokens. temperature 0 = argmax; `seed` an int or a
        numpy Generator makes sampling reproducible."""
        z = self._z(z)
        if temperature < 0 or not np.isfinite(temperature):
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        batch = z.shape[0]
        with self._lock:
            loop = self._loop(batch)
            loop.prev.fill(0.0)
            if self.hierarchical:
                emb = self.sessions["conductor"].run(None, {"z": z})[0]            # (B, bars, emb)
                conds = np.ascontiguousarray(emb.transpose(1, 0, 2)).reshape(self.bars * batch, -1)
                step_conds, c_all, h_all = self._init_bars(conds)        # (bars*B, .), (L, bars*B, U) x2
                bars = [(step_conds[i * batch:(i + 1) * batch], c_all[:, i * batch:(i + 1) * batch],
                         h_all[:, i * batch:(i + 1) * batch]) for i in range(self.bars)]
                steps = self.steps_per_bar
            else:
                bars, steps = [self._init_bars(z)], self.num_steps
            t = 0
            for cond, c, h in bars:
                loop.load_bar_state(c, h, cond)
                for s in range(steps):
                    self._step(loop, s % 2)
                    self._choose(loop, float(temperature), rng, t)
                    t += 1
            return loop.tokens.copy()

    def decode(self, z, temperature: float = 0.0, seed=None, velocity: int = 100) -> list[list[Note]]:
        """(B, z) or (z,) -> list of B note lists."""
        return self.tokens_to_notes(self.decode_tokens(z, temperature, seed), velocity=velocity)

    # -- higher level -------------------------------------------------------------------------
    def sample_z(self, n: int, seed=None) -> np.ndarray:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return rng.standard_normal((n, self.z_size), dtype=np.float32)

    def sample(self, n: int = 1, temperature: float = 0.5, seed=0) -> list[list[Note]]:
        """n sequences from z ~ N(0, I), decoded at `temperature`; the same seed gives the same notes."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return self.decode(self.sample_z(n, rng), temperature, rng)

    def _to_z(self, x) -> np.ndarray:
        """A latent vector, or notes to encode -> (z,)."""
        if isinstance(x, np.ndarray) and x.dtype.kind == "f":
            return self._z(x)[0]
        return self.encode([list(x)])[0]

    def interpolate_z(self, a, b, steps: int = 8, method: str = "slerp") -> np.ndarray:
        return latent.interpolate(self._to_z(a), self._to_z(b), steps, method)

    def interpolate(self, a, b, steps: int = 8, temperature: float = 0.0, method: str = "slerp",
                    seed=None) -> list[list[Note]]:
        """`steps` sequences morphing from a to b (note lists or z vectors), decoded in one batch.
        At temperature 0 the first and last are the reconstructions of a and b."""
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            za, zb = self._to_z(a), self._to_z(b)
        else:
            za, zb = self.encode([list(a), list(b)])
        return self.decode(latent.interpolate(za, zb, steps, method), temperature, seed)

    def palette(self, corners, size=4, temperature: float = 0.0, seed=None) -> list[list[Note]]:
        """Beat Blender: four corners (a (4, z) array or four note lists; top-left, top-right,
        bottom-left, bottom-right) blended bilinearly over a size x size (or (rows, cols)) grid,
        decoded in one batch; row-major list of note lists."""
        if isinstance(corners, np.ndarray):
            zs = corners.astype(np.float32)
        else:
            corners = list(corners)
            if len(corners) != 4:
                raise ValueError(f"a palette needs 4 corners, got {len(corners)}")
            if all(isinstance(c, np.ndarray) for c in corners):
                zs = np.stack([self._z(c)[0] for c in corners])
            else:
                zs = self.encode([list(c) for c in corners])
        return self.decode(latent.palette(zs, size), temperature, seed)

    def accompany(self, melody_notes, temperature: float = 0.0, seed=None, **kw) -> list[Note]:
        """Bass and drums for a melody (trio packages with a surrogate encoder): one note list,
        track 0 = the melody note for note, 1 = bass, 2 = drums. See bridge.accompany."""
        from .accompany import accompany
        return accompany(self, melody_notes, temperature=temperature, seed=seed, **kw)

    def variations(self, notes, n: int = 4, spread: float = 0.5, seed=None,
                   temperature: float = 0.0) -> list[list[Note]]:
        """n variations of one sequence (or of a z): decode(z + spread * N(0, I))."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        zs = latent.variations(self._to_z(notes), n, spread, rng)
        return self.decode(zs, temperature, rng)


def load_model(name_or_path, provider: str = "auto", models_dirs=None, threads: int = 1,
               io_binding: bool | None = None, verify: bool = True) -> Model:
    """Load a model package by name (bridge/models/<name>, $LATENT_BRIDGE_MODELS, `models_dirs`) or
    path. provider: "auto" (CUDA when onnxruntime has it, else CPU), "cpu", or "cuda" (falls back to
    the CPU with a RuntimeWarning where CUDA is not available). Raises ModelError for a missing or
    broken package (bad manifest, missing file, sha256 mismatch, graph onnxruntime cannot load)."""
    return Model(find_model(name_or_path, models_dirs), provider=provider, threads=threads,
                 io_binding=io_binding, verify=verify)
