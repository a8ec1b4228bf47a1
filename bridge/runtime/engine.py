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

Precision of the decoder step (`precision=`): "fp32" runs decoder_step.onnx; "int8" runs the package's
int8 step (decoder_step.int8.onnx, a drop-in with the same inputs and outputs, written by
`python -m export_onnx add-int8`) where it has one, else fp32 with a warning; "auto" runs int8 only
when the package has it, its measured argmax agreement with fp32 is >= INT8_MIN_AGREEMENT (0.98) and
the provider is the CPU, else fp32. None: the process default (`set_default_precision`, else
$LATENT_BRIDGE_PRECISION, else "auto"). Each load logs which precision it took and why
(logger "bridge.runtime.engine"); `Model.precision` / `Model.precision_reason` keep it. The encoder
follows the same rule with its own int8 version and gate (encoder.int8.onnx, `int8_encoder` section;
`Model.encoder_precision` / `Model.encoder_precision_reason`).
"""
from __future__ import annotations

import logging
import os
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..core import latent
from ..core.codecs import SequenceCodec
from ..core.directions import direction_names, direction_vector
from ..core.errors import Cancelled, ModelError
from ..core.notes import Note
from .accompany import Accompanist
from .package import (GRAPH_IO, INT8_MIN_AGREEMENT, find_model, graph_io, int8_agreement, int8_graph,
                      read_manifest, sampler_entry, verify_files)
from .prior import LatentPrior, read_prior
from .sessions import open_session, ort, pick_providers

MAX_CACHED_BATCH_SIZES = 8
PRECISIONS = ("fp32", "int8", "auto")
PRECISION_ENV = "LATENT_BRIDGE_PRECISION"   # the process default when set_default_precision was not called
log = logging.getLogger(__name__)
_default_precision: str | None = None


# ----------------------------------------------------------------------------------------------
# precision of the decoder step

def check_precision(precision) -> str:
    """`precision` if it is one of PRECISIONS.

    Raises:
        ValueError: anything else, naming the accepted values.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    return precision


def set_default_precision(precision: str | None) -> None:
    """The precision `load_model` / `Model` use when given none, for this process (`python -m bridge
    serve --precision` sets it before the daemon loads its models); None: back to
    $LATENT_BRIDGE_PRECISION, else "auto".

    Raises:
        ValueError: not one of PRECISIONS.
    """
    global _default_precision
    _default_precision = None if precision is None else check_precision(precision)


def default_precision() -> str:
    """The precision used when none is given: `set_default_precision`'s, else $LATENT_BRIDGE_PRECISION,
    else "auto".

    Raises:
        ValueError: $LATENT_BRIDGE_PRECISION holds something else than fp32, int8 or auto.
    """
    if _default_precision is not None:
        return _default_precision
    env = os.environ.get(PRECISION_ENV)
    if env:
        try:
            return check_precision(env.strip())
        except ValueError as e:
            raise ValueError(f"${PRECISION_ENV}: {e}") from None
    return "auto"


def choose_precision(info: dict, precision: str | None = None, provider: str = "cpu",
                     role: str = "decoder_step") -> tuple[str, str]:
    """Which precision a package runs a graph at: ("fp32" | "int8", why).

    Args:
        info: the manifest.
        precision: "fp32", "int8", "auto" or None (`default_precision()`).
        provider: "cpu" or "cuda" (the int8 graphs' dynamic quantisation is a CPU kernel: auto keeps
            fp32 on CUDA).
        role: "decoder_step" or "encoder" (bridge.runtime.package.INT8_GRAPHS).

    Returns:
        fp32 for "fp32"; int8 for "int8" when the package has a usable int8 version of the graph
        (bridge.runtime.package.int8_graph), whatever its agreement; int8 for "auto" only when, in
        addition, its agreement is >= INT8_MIN_AGREEMENT and the provider is the CPU. Otherwise fp32,
        the reason saying why.

    Raises:
        ValueError: an unknown precision.
    """
    asked = check_precision(default_precision() if precision is None else precision)
    if asked == "fp32":
        return "fp32", "fp32 asked for"
    entry, why_not = int8_graph(info, role)
    what = "step" if role == "decoder_step" else role
    if entry is None:
        return "fp32", f"{asked} asked for; {why_not}"
    agreement = int8_agreement(entry)
    measured = "no agreement recorded" if agreement is None else f"argmax agreement {agreement:.4f}"
    if asked == "int8":
        return "int8", f"int8 asked for ({measured})"
    if agreement is None or agreement < INT8_MIN_AGREEMENT:
        return "fp32", f"auto: the int8 {what}'s {measured} is below the {INT8_MIN_AGREEMENT:.2f} gate"
    if provider != "cpu":
        return "fp32", f"auto: int8 ({measured}) runs on the CPU only; the provider is {provider}"
    return "int8", f"auto: the int8 {what}'s {measured} >= the {INT8_MIN_AGREEMENT:.2f} gate"


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
        rt = ort()
        sess = m.sessions["decoder_step"]
        dev = "cuda" if m.provider == "cuda" else "cpu"
        if dev == "cpu":
            # states live in numpy arrays: the graph reads and writes them in place
            self.c = [self.host_c, np.zeros(shape, np.float32)]
            self.h = [self.host_h, np.zeros(shape, np.float32)]
            vals_c = [rt.OrtValue.ortvalue_from_numpy(a) for a in self.c]
            vals_h = [rt.OrtValue.ortvalue_from_numpy(a) for a in self.h]
            cond = rt.OrtValue.ortvalue_from_numpy(self.cond)
        else:
            vals_c = [rt.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, "cuda", 0) for _ in range(2)]
            vals_h = [rt.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, "cuda", 0) for _ in range(2)]
            cond = rt.OrtValue.ortvalue_from_shape_and_type(self.cond.shape, np.float32, "cuda", 0)
        self.vals_c, self.vals_h, self.cond_val = vals_c, vals_h, cond
        prev = rt.OrtValue.ortvalue_from_numpy(self.prev)
        logits = rt.OrtValue.ortvalue_from_numpy(self.logits)
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
    """A loaded model package: encode notes to latent vectors, decode latent vectors to notes.

    Attributes: `info` (model.json), `name`, `kind` (melody | drums | trio), `hierarchical`, `bars`,
    `steps_per_bar`, `num_steps`, `segments` and `steps_per_segment` (what one conductor embedding
    decodes: a bar, or several), `z_size`, `codec` (bridge.core.codecs.SequenceCodec), `provider`
    ("cpu" | "cuda"), `precision` ("fp32" | "int8" | "file": the decoder step that runs) and
    `precision_reason`, `encoder_precision` and `encoder_precision_reason` (the same for the encoder),
    `sessions` (role -> onnxruntime session), `attributes` (direction names),
    `sampler` (the package's low-KL companion that `sample` decodes with, or None), `prior` (the
    fitted Gaussian `sample_z` draws from, bridge.runtime.prior.LatentPrior, or None: N(0, I)).
    Calls are serialised by a lock: one Model may be shared between threads. See docs/architecture.md.
    """

    def __init__(self, package_dir, provider: str = "auto", threads: int = 1, io_binding: bool | None = None,
                 verify: bool = True, precision: str | None = None, step_file=None, encoder_file=None):
        """Open a package's graphs.

        Args:
            package_dir: the package directory (see `load_model` for lookup by name).
            provider: "auto", "cpu" or "cuda" (bridge.runtime.sessions.pick_providers).
            threads: onnxruntime intra-op threads per session.
            io_binding: bind the decode loop's buffers to the step graph (default True).
            verify: check every listed file's sha256 first.
            precision: "fp32", "int8", "auto" or None (the process default); see `choose_precision`.
            step_file: a drop-in decoder_step graph to run instead (same inputs and outputs; checked
                like the package's graphs, not hashed): how add-int8 measures a candidate before it
                enters the package. `precision` is then "file".
            encoder_file: the same for the encoder (`encoder_precision` is then "file").

        Raises:
            ModelError: a bad manifest, a missing or changed file, a graph onnxruntime cannot load
                or whose inputs and outputs do not fit the manifest.
            ValueError: an unknown provider name or precision.
        """
        check_precision(default_precision() if precision is None else precision)
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
        providers = pick_providers(provider)
        self.threads = threads
        on = "cuda" if "CUDAExecutionProvider" in providers else "cpu"
        if step_file is not None:
            self.precision, self.precision_reason = "file", f"decoder step from {step_file}"
        else:
            self.precision, self.precision_reason = choose_precision(info, precision, on)
            asked = default_precision() if precision is None else precision
            level = logging.WARNING if asked == "int8" and self.precision != "int8" else logging.INFO
            log.log(level, "%s: decoder step %s (%s)", self.name, self.precision, self.precision_reason,
                    extra={"fields": {"model": self.name, "precision": self.precision}})
        if encoder_file is not None:
            self.encoder_precision, self.encoder_precision_reason = "file", f"encoder from {encoder_file}"
        else:
            self.encoder_precision, self.encoder_precision_reason = choose_precision(info, precision, on, "encoder")
        # the graph files that replace a role's float graph: a given candidate, or the int8 one chosen
        replaced = {}
        for role, given, chosen in (("decoder_step", step_file, self.precision),
                                    ("encoder", encoder_file, self.encoder_precision)):
            if given is not None:
                replaced[role] = Path(given)
            elif chosen == "int8":
                replaced[role] = self.path / int8_graph(info, role)[0]["file"]
        self.sessions = {}
        for role, g in info["graphs"].items():
            if role == "conductor" and not self.hierarchical:
                continue
            if role not in GRAPH_IO:
                continue
            path = replaced.get(role, self.path / g["file"])
            self.sessions[role] = open_session(path, providers, threads)
        used = self.sessions["decoder_step"].get_providers()
        if "CUDAExecutionProvider" in providers and "CUDAExecutionProvider" not in used:
            warnings.warn("onnxruntime could not start CUDA for this model; running on the CPU",
                          RuntimeWarning, stacklevel=2)
        self.provider = "cuda" if "CUDAExecutionProvider" in used else "cpu"
        self._check_graphs()
        self.layers_total = self._state_shape()[0]   # L: layers x core decoders, fixed in the graph
        # a conductor emits one embedding per segment: a bar (the paper's), or several bars when the
        # core decoder is a shorter model's (export_onnx.latent_chain: 2-bar codes for 16 bars)
        self.segments, self.steps_per_segment = (self._segments_of_conductor() if self.hierarchical
                                                 else (1, self.num_steps))
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
        self._accompanist: Accompanist | None = None
        # a low-KL companion that `sample` decodes with (bridge.runtime.package.sampler_entry), or a
        # Gaussian fitted to this model's own codes that `sample` draws z from (bridge.runtime.prior)
        entry = sampler_entry(self.path, info)
        self.prior: LatentPrior | None = read_prior(self.path, info, self.z_size)
        if entry is not None and self.prior is not None:
            raise ModelError(f"{self.path}: a package has a sampler or a fitted prior, not both")
        self.sampler: Model | None = None if entry is None else Model(
            self.path / entry["dir"], provider=provider, threads=threads, io_binding=io_binding, verify=verify,
            precision=precision)

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

    def _segments_of_conductor(self) -> tuple[int, int]:
        shape = {o.name: o.shape for o in self.sessions["conductor"].get_outputs()}["embeddings"]
        segments = shape[1] if len(shape) == 3 else None
        if not isinstance(segments, int) or segments < 1 or self.num_steps % segments:
            raise ModelError(f"{self.path}: conductor output shape {shape} does not split "
                             f"{self.num_steps} steps into equal segments")
        return segments, self.num_steps // segments

    def _state_shape(self):
        shape = {i.name: i.shape for i in self.sessions["decoder_step"].get_inputs()}["state_c"]
        if len(shape) != 3 or not isinstance(shape[0], int) or shape[2] != self.units:
            raise ModelError(f"{self.path}: decoder_step state shape {shape} does not fit (L, B, {self.units})")
        return shape[0], shape[2]

    def __repr__(self):
        return (f"Model({self.name!r}, kind={self.kind}, bars={self.bars}, z={self.z_size}, provider={self.provider}, "
                f"precision={self.precision})")

    # -- attributes ---------------------------------------------------------------------------
    @property
    def attributes(self) -> list[str]:
        """Names usable with `attribute()`: attribute vectors, then the other named directions
        (bridge.core.directions gives the order and precedence)."""
        return direction_names(self.info)

    def attribute_vector(self, name) -> np.ndarray:
        """The latent vector of an attribute or direction.

        Args:
            name: a name from `attributes`, or an index into it.

        Returns:
            float32 (z,).

        Raises:
            DirectionError (a KeyError): no such attribute; the message lists the known ones.
            ModelError: the stored vector does not have z_size values.
        """
        return direction_vector(self.info, name, self.z_size)

    def attribute(self, z, name: str, amount: float) -> np.ndarray:
        """Move latent vectors along an attribute.

        Args:
            z: (z,) or (B, z).
            name: an attribute or direction name (see `attributes`).
            amount: how far; the vector's units (about one quartile step of the attribute).

        Returns:
            (B, z) float32: z + amount * vector.

        Raises:
            DirectionError, ModelError: as `attribute_vector`; ValueError: a bad z.
        """
        return latent.move(self._z(z), self.attribute_vector(name), amount)

    # -- notes <-> tokens ---------------------------------------------------------------------
    def notes_to_tokens(self, sequences) -> np.ndarray:
        """Notes to tokens, the way user input is read.

        Args:
            sequences: a list of note lists, or one note list (bridge.Note).

        Returns:
            (B, steps, tracks) int64. Notes past the model's length are dropped; pitches outside a
            track's range are folded by octaves.

        Raises:
            CodecError (a ValueError): notes the codec cannot represent.
        """
        seqs = self._sequences(sequences)
        return np.stack([self.codec.encode(list(s), self.num_steps, fold_octaves=True) for s in seqs])

    def tokens_to_notes(self, tokens, velocity: int = 100) -> list[list[Note]]:
        """(steps, tracks) or (B, steps, tracks) tokens -> B note lists, every note at `velocity`.

        Raises:
            CodecError: a token out of a track's range.
        """
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
        """Run the encoder on tokens.

        Args:
            tokens: (B, steps, tracks) or (steps, tracks) integers, each in its track's range.
            return_sigma: also return the posterior standard deviations.

        Returns:
            (B, z) float32 posterior means, or (mu, sigma) when `return_sigma`.

        Raises:
            ValueError: a wrong shape or a token out of range.
        """
        tokens = np.asarray(tokens)
        if tokens.ndim == 2:
            tokens = tokens[None]
        if tokens.ndim != 3 or tokens.shape[1:] != (self.num_steps, len(self.num_classes)):
            raise ValueError(f"tokens must be (B, {self.num_steps}, {len(self.num_classes)}), got {tokens.shape}")
        for k, n in enumerate(self.num_classes):
            col = tokens[..., k]
            if col.size and (col.min() < 0 or col.max() >= n):
                raise ValueError(f"track {k} tokens must be in 0..{n - 1}")
        if not len(tokens):          # onnxruntime's LSTM kernels abort the process on an empty batch
            empty = np.zeros((0, self.z_size), dtype=np.float32)
            return (empty, empty.copy()) if return_sigma else empty
        onehot = self.codec.one_hot(tokens.astype(np.int64))
        with self._lock:
            if self.encoder_precision == "fp32":
                mu, sigma = self.sessions["encoder"].run(None, {"inputs": onehot})
            else:
                # an int8 encoder quantises its activations over the whole call: one sequence per call,
                # so that a clip's code does not depend on what else is encoded with it
                rows = [self.sessions["encoder"].run(None, {"inputs": onehot[i:i + 1]}) for i in range(len(onehot))]
                mu, sigma = (np.concatenate(part) for part in zip(*rows))
        return (mu, sigma) if return_sigma else mu

    def encode(self, sequences, return_sigma: bool = False):
        """Encode notes: `encode_tokens(notes_to_tokens(sequences))`.

        Args:
            sequences: a list of note lists, or one note list.
            return_sigma: also return the posterior standard deviations.

        Returns:
            (B, z) float32 posterior means (or (mu, sigma)).

        Raises:
            CodecError (a ValueError): notes the codec cannot represent.
        """
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

    def _choose(self, loop: _Loop, temperature: float, rng, t: int, mask=None):
        """Pick the tokens of step t from loop.logits (per-track argmax, or Gumbel-max sampling
        = a categorical draw from softmax(logits / temperature) per track) and write loop.prev.
        `mask` (input_size,), added to the logits first: -inf rules a class out (a scale)."""
        if mask is not None:
            np.add(loop.logits, mask, out=loop.logits)
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

    def decode_tokens(self, z, temperature: float = 0.0, seed=None, cancel=None, mask=None) -> np.ndarray:
        """Run the decode loop: every row of z is one row of the same batch.

        Args:
            z: (B, z) or (z,) finite latent vectors.
            temperature: 0 = per-track argmax; > 0 = a draw from softmax(logits / temperature).
            seed: an int or a numpy Generator; makes sampling reproducible.
            cancel: a threading.Event (or anything with is_set()); checked before every step: once
                set, the loop stops and releases the model.
            mask: None, or an (input_size,) float32 array added to the logits at every step before
                the choice: -inf rules a class out (bridge.core.scale.logit_mask: a song's scale).

        Returns:
            (B, steps, tracks) int64 tokens.

        Raises:
            ValueError: a bad z or a negative / non-finite temperature.
            Cancelled: `cancel` was set before the last step.
        """
        z = self._z(z)
        if temperature < 0 or not np.isfinite(temperature):
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        batch = z.shape[0]
        if not batch:                # onnxruntime's LSTM kernels (the conductor) abort on an empty batch
            return np.zeros((0, self.num_steps, len(self.num_classes)), dtype=np.int64)
        with self._lock:
            loop = self._loop(batch)
            loop.prev.fill(0.0)
            if self.hierarchical:
                emb = self.sessions["conductor"].run(None, {"z": z})[0]            # (B, segments, emb)
                conds = np.ascontiguousarray(emb.transpose(1, 0, 2)).reshape(self.segments * batch, -1)
                step_conds, c_all, h_all = self._init_bars(conds)        # (S*B, .), (L, S*B, U) x2
                bars = [(step_conds[i * batch:(i + 1) * batch], c_all[:, i * batch:(i + 1) * batch],
                         h_all[:, i * batch:(i + 1) * batch]) for i in range(self.segments)]
                steps = self.steps_per_segment
            else:
                bars, steps = [self._init_bars(z)], self.num_steps
            t = 0
            for cond, c, h in bars:
                loop.load_bar_state(c, h, cond)
                for s in range(steps):
                    if cancel is not None and cancel.is_set():
                        raise Cancelled(f"decode of {self.name} cancelled at step {t} of {self.num_steps}")
                    self._step(loop, s % 2)
                    self._choose(loop, float(temperature), rng, t, mask)
                    t += 1
            return loop.tokens.copy()

    def decode(self, z, temperature: float = 0.0, seed=None, velocity: int = 100,
               cancel=None, mask=None) -> list[list[Note]]:
        """Decode latent vectors to notes: `tokens_to_notes(decode_tokens(z, temperature, seed, cancel))`.

        Returns:
            B note lists (one per row of z), every note at `velocity`.

        Raises:
            ValueError, Cancelled: as `decode_tokens`.
        """
        return self.tokens_to_notes(self.decode_tokens(z, temperature, seed, cancel, mask), velocity=velocity)

    # -- higher level -------------------------------------------------------------------------
    def sample_z(self, n: int, seed=None) -> np.ndarray:
        """n draws from the package's prior: N(0, I), or its fitted prior (`prior`: k standard
        normals mapped into z) when it has one. (n, z) float32; `seed` an int or a Generator."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        if self.prior is not None:
            return self.prior.draw(n, rng)
        return rng.standard_normal((n, self.z_size), dtype=np.float32)

    def prior_latents(self, n: int, seed=None, temperature: float = 0.5) -> np.ndarray:
        """n latent vectors to start from where no clip gives one (a knob turned first, the pad's
        free corners): `sample_z` (the fitted prior's draws when the package has one); for a pair,
        the sampler's samples encoded by this model (this package's own draws of N(0, I) sound poor:
        that is why it ships a sampler). (n, z) float32."""
        if self.sampler is None:
            return self.sample_z(n, seed)
        return self.encode(self.sampler.sample(n, temperature, seed))

    @property
    def prior_model(self) -> "Model":
        """The model prior samples come from: the package's sampler when it has one, else itself."""
        return self if self.sampler is None else self.sampler

    def sample(self, n: int = 1, temperature: float = 0.5, seed=0, mask=None) -> list[list[Note]]:
        """n sequences from the prior (`sample_z`), decoded at `temperature` (by `prior_model`: the
        package's sampler when it has one); the same seed gives the same notes. `mask`: as `decode_tokens`.

        Raises:
            ValueError: n < 1.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if self.sampler is not None:
            return self.sampler.sample(n, temperature, seed, mask)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return self.decode(self.sample_z(n, rng), temperature, rng, mask=mask)

    def _to_z(self, x) -> np.ndarray:
        """A latent vector, or notes to encode -> (z,)."""
        if isinstance(x, np.ndarray) and x.dtype.kind == "f":
            return self._z(x)[0]
        return self.encode([list(x)])[0]

    def interpolate_z(self, a, b, steps: int = 8, method: str = "slerp") -> np.ndarray:
        """The latent path from a to b (note lists or z vectors): (steps, z), both ends included."""
        return latent.interpolate(self._to_z(a), self._to_z(b), steps, method)

    def interpolate(self, a, b, steps: int = 8, temperature: float = 0.0, method: str = "slerp",
                    seed=None) -> list[list[Note]]:
        """`steps` sequences morphing from a to b, decoded in one batch.

        Args:
            a, b: note lists or (z,) float vectors.
            steps: points on the path, both ends included (>= 2).
            temperature, seed: as `decode_tokens`.
            method: "slerp" or "lerp".

        Returns:
            `steps` note lists; at temperature 0 the first and last reconstruct a and b.

        Raises:
            ValueError: steps < 2, an unknown method; CodecError: notes that do not fit.
        """
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            za, zb = self._to_z(a), self._to_z(b)
        else:
            za, zb = self.encode([list(a), list(b)])
        return self.decode(latent.interpolate(za, zb, steps, method), temperature, seed)

    def palette(self, corners, size=4, temperature: float = 0.0, seed=None) -> list[list[Note]]:
        """Beat Blender: four corners blended bilinearly over a grid, decoded in one batch.

        Args:
            corners: a (4, z) array, four z vectors or four note lists: top-left, top-right,
                bottom-left, bottom-right.
            size: an int (size x size) or (rows, cols), each >= 2.
            temperature, seed: as `decode_tokens`.

        Returns:
            rows * cols note lists, row-major; the corner cells decode the corners.

        Raises:
            ValueError: not four corners, a grid under 2x2; CodecError: notes that do not fit.
        """
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

    def accompanist(self) -> Accompanist:
        """This model's Accompanist (bridge.runtime.accompany), opened on first use.

        Raises:
            ModelError: not a trio model, or no surrogate encoder in the package.
        """
        with self._lock:
            if self._accompanist is None:
                self._accompanist = Accompanist(self)
            return self._accompanist

    def accompany(self, melody_notes, temperature: float = 0.0, seed=None, **kw) -> list[Note]:
        """Bass and drums for a melody (trio packages with a surrogate encoder).

        Args:
            melody_notes: the melody (non-drum notes on track 0).
            temperature, seed: as `decode_tokens`.
            **kw: time_signature, velocity (see `Accompanist.accompany`).

        Returns:
            One note list: track 0 = the melody note for note, 1 = bass, 2 = drums.

        Raises:
            ModelError: the model cannot accompany; InvalidInput (a ValueError): a bad melody.
        """
        return self.accompanist().accompany(melody_notes, temperature=temperature, seed=seed, **kw)

    def variations(self, notes, n: int = 4, spread: float = 0.5, seed=None,
                   temperature: float = 0.0) -> list[list[Note]]:
        """n variations of one sequence (or of a z): decode(z + spread * N(0, I)).

        Raises:
            ValueError: n < 1; CodecError: notes that do not fit.
        """
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        zs = latent.variations(self._to_z(notes), n, spread, rng)
        return self.decode(zs, temperature, rng)


def load_model(name_or_path, provider: str = "auto", models_dirs=None, threads: int = 1,
               io_binding: bool | None = None, verify: bool = True, precision: str | None = None) -> Model:
    """Load a model package by name or path.

    Args:
        name_or_path: a package name (searched in `models_dirs`, $LATENT_BRIDGE_MODELS, then the
            shipped bridge/models/), a package directory or its model.json.
        provider: "auto" (CUDA when onnxruntime has it, else CPU), "cpu", or "cuda" (falls back to
            the CPU with a RuntimeWarning where CUDA is not available).
        models_dirs: extra package directories, searched first.
        threads, io_binding, verify: as `Model`.
        precision: the decoder step's precision, "fp32", "int8" or "auto" (None: the process default,
            `default_precision()`); see `choose_precision`.

    Returns:
        The Model.

    Raises:
        ModelError: a missing or broken package (bad manifest, missing file, sha256 mismatch, a
            graph onnxruntime cannot load).
        ValueError: an unknown provider or precision.
    """
    return Model(find_model(name_or_path, models_dirs), provider=provider, threads=threads,
                 io_binding=io_binding, verify=verify, precision=precision)
