"""The latent-chain VAE's torch modules (export_onnx.latent_chain describes the method)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bridge.core.codecs import MELODY_FIRST_PITCH

from ..configs import ModelConfig, ModelSize
from ..lstm import BidirectionalLSTM, Dense, StackedLSTM
from ..model import DecoderBase, LstmCoreDecoder, SplitCores, initial_state, one_hot, sample_mask
from ..model import segments as segments_of

ARCHITECTURE = "latent_chain"


@dataclass(frozen=True)
class ChainSize:
    """The trained parts' sizes (the short models' parts keep theirs)."""
    z_size: int = 256
    enc_units: int = 256      # BiLSTM over the segment codes, per direction
    cond_units: int = 256     # conductor LSTM units per layer
    cond_layers: int = 2
    # linear (a weighted PCA of the codes, export_onnx.latent_chain.linear): z <-> the code dimensions
    # the short models use (`used`, indices into a segment's code), no LSTMs
    linear: bool = False
    used: tuple = ()


@dataclass(frozen=True)
class ChainPart:
    """One short model under a chain: the track of the long config it writes, and the semitones
    that track's notes move by to enter the short model's range (the trio's bass sits two octaves
    below the melodies mel_2bar learned; moved up it reconstructs 0.944 instead of 0.722 on 128
    held-out lmd_beatles windows)."""
    short: str                # the short package's name (model.json "name")
    track: int = 0
    shift: int = 0


# which short model writes which track, per long config
CHAIN_PARTS = {
    "mel_16bar": (ChainPart("mel_2bar"),),
    "trio_16bar": (ChainPart("mel_2bar", 0), ChainPart("mel_2bar", 1, shift=24), ChainPart("drums_2bar", 2)),
}


def chain_parts(config_name: str) -> tuple[ChainPart, ...]:
    if config_name not in CHAIN_PARTS:
        raise ValueError(f"no latent chain is defined for {config_name} (known: {sorted(CHAIN_PARTS)})")
    return CHAIN_PARTS[config_name]


def class_map(num_classes: int, shift: int) -> np.ndarray:
    """(num_classes,) the short model's class of each class of a melody track moved by `shift`
    semitones; a note that would leave the range moves by whole octaves less (only the encoder
    sees such notes: the decoder never writes them, see `output_map`). Identity for shift 0."""
    out = np.arange(num_classes)
    if shift:
        pitch = out >= MELODY_FIRST_PITCH
        moved = out + shift
        while (moved[pitch] >= num_classes).any():
            moved = np.where(pitch & (moved >= num_classes), moved - 12, moved)
        out = np.where(pitch, moved, out)
    return out


def output_map(num_classes: int, shift: int) -> np.ndarray:
    """(num_classes,) the short model's class whose logit becomes each class's logit; -1 for notes
    the short model cannot write once moved (those are never chosen)."""
    out = np.arange(num_classes) + np.where(np.arange(num_classes) >= MELODY_FIRST_PITCH, shift, 0)
    return np.where(out < num_classes, out, -1)


NEVER = -1.0e4   # the bias of a class the short model cannot write (exp(NEVER) is 0 in fp16 and fp32)


def compose_core(core: LstmCoreDecoder, shift: int = 0) -> LstmCoreDecoder:
    """A short model's core decoder writing a melody track moved by `shift` semitones: it reads and
    writes the long track's classes and gives the same numbers as the short core on the moved
    notes. shift 0: the core itself. Otherwise only the previous token's rows of the first layer and
    the output projection are new; everything else is the short core's own modules (shared, so the
    exported graphs hold those weights once)."""
    if not shift:
        return core
    (n,) = core.num_classes
    new = LstmCoreDecoder([n], core.cond_size, core.units, core.layers)
    new.z_to_initial_state = core.z_to_initial_state
    src = core.lstm.cells[0]
    rows, cols = class_map(n, shift), output_map(n, shift)
    with torch.no_grad():
        first = new.lstm.cells[0]
        first.kernel.copy_(torch.cat([src.kernel[torch.from_numpy(rows)], src.kernel[n:]]))
        first.bias.copy_(src.bias)
        ok = torch.from_numpy(cols >= 0)
        safe = torch.from_numpy(np.maximum(cols, 0))
        new.output_projection.kernel.copy_(core.output_projection.kernel[:, safe] * ok)
        new.output_projection.bias.copy_(torch.where(ok, core.output_projection.bias[safe],
                                                     torch.full_like(core.output_projection.bias, NEVER)))
    new.lstm.cells = nn.ModuleList([first] + list(core.lstm.cells[1:]))
    return new.requires_grad_(False)


class PartEncoder(nn.Module):
    """A short model's encoder reading one track of the long one-hot: (B, seg_steps, input) -> its
    posterior (mu, sigma); a moved melody track goes through a constant class permutation."""

    def __init__(self, short_encoder: nn.Module, track_slice: tuple[int, int], num_classes: int, shift: int):
        super().__init__()
        self.short, self.track_slice, self.shift = short_encoder, track_slice, shift
        if shift:
            move = torch.zeros(num_classes, num_classes)
            move[torch.arange(num_classes), torch.from_numpy(class_map(num_classes, shift))] = 1.0
            self.register_buffer("move", move)

    def forward(self, pieces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.track_slice
        x = pieces[..., a:b]
        return self.short(x @ self.move if self.shift else x)


class ChainEncoder(nn.Module):
    """One-hot tokens (B, segments * seg_steps, input) -> (mu, sigma): each part's short encoder on
    each segment (their posterior means side by side: the codes), then a BiLSTM over the codes."""

    def __init__(self, parts: list[PartEncoder], segments: int, seg_steps: int, code_size: int,
                 units: int, z_size: int):
        super().__init__()
        self.parts = nn.ModuleList(parts)
        self.segments, self.seg_steps, self.code_size = segments, seg_steps, code_size
        self.lstm = BidirectionalLSTM(code_size, units)
        self.mu = Dense(2 * units, z_size)
        self.sigma = Dense(2 * units, z_size)

    def codes(self, inputs: torch.Tensor) -> torch.Tensor:
        pieces = inputs.reshape(-1, self.seg_steps, inputs.shape[-1])
        return torch.cat([part(pieces)[0] for part in self.parts], dim=-1).reshape(-1, self.segments, self.code_size)

    def from_codes(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.lstm(codes)
        return self.mu(e), F.softplus(self.sigma(e))

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.from_codes(self.codes(inputs))


class LinearChainEncoder(ChainEncoder):
    """ChainEncoder whose summary of the codes is linear: the used dimensions of every segment's code,
    side by side, times one matrix -> mu; sigma a constant per z dimension (its posterior width)."""

    def __init__(self, parts: list[PartEncoder], segments: int, seg_steps: int, code_size: int,
                 used: tuple, z_size: int):
        nn.Module.__init__(self)
        self.parts = nn.ModuleList(parts)
        self.segments, self.seg_steps, self.code_size = segments, seg_steps, code_size
        self.used = nn.Parameter(torch.tensor(used, dtype=torch.long), requires_grad=False)
        self.mu = Dense(segments * len(used), z_size)
        self.log_sigma = nn.Parameter(torch.zeros(z_size))

    def from_codes(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = self.mu(codes[..., self.used].reshape(codes.shape[0], -1))
        return mu, torch.exp(self.log_sigma).expand_as(mu)


class ChainDecoder(SplitCores, DecoderBase):
    """Conductor (z -> one code per segment: the parts' codes side by side) + the short models'
    core decoders, one per track (`compose_core`), core k reading its own code (`_cond_slices`).

    Presents the hierarchical decoder's export interface (`conductor`, `init_state`, `step`, `bars`
    = segments, `steps_per_bar` = steps per segment, `emb_size` = the code size), so the exporter
    and export_onnx.step_graph treat it like any hierarchical decoder (one core per part)."""

    hierarchical = True

    def __init__(self, cores: list[LstmCoreDecoder], z_size: int, cond_units: int, cond_layers: int,
                 segments: int, seg_steps: int):
        """cores: one per track, in track order; each reads its own code, the codes side by side."""
        super().__init__()
        self.num_classes = [n for core in cores for n in core.num_classes]
        self.bars, self.steps_per_bar = segments, seg_steps
        self.num_steps = segments * seg_steps
        self.input_size = sum(self.num_classes)
        self.z_size, self.cond_units, self.cond_layers = z_size, cond_units, cond_layers
        self.emb_size = self.cond_size = sum(core.cond_size for core in cores)
        self._cond_slices = segments_of([core.cond_size for core in cores])
        self.units, self.layers = cores[0].units, cores[0].layers
        self.conductor_initial_state = Dense(z_size, 2 * cond_layers * cond_units)
        self.conductor_lstm = StackedLSTM(1, cond_units, cond_layers)
        self.code_projection = Dense(cond_units, self.cond_size)   # codes are not bounded like h
        self.cores = nn.ModuleList(cores)
        self.state_layers = self.layers * len(cores)
        self._core_slices = segments_of([sum(core.num_classes) for core in cores])

    def conductor(self, z: torch.Tensor) -> torch.Tensor:
        c, h = initial_state(self.conductor_initial_state, z, self.cond_layers, self.cond_units)
        out, _, _ = self.conductor_lstm(z.new_zeros(z.shape[0], self.bars, 1), c, h)
        return self.code_projection(out)

    def forward(self, z: torch.Tensor, targets: torch.Tensor, sampling_probability: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Teacher-forced logits (B, steps, input), segments in parallel; a segment's first input is
        the previous segment's last token, as the runtime's decode loop carries it."""
        b = z.shape[0]
        codes = self.conductor(z).reshape(b * self.bars, self.emb_size)
        inputs = self.training_inputs(targets, generator).reshape(b * self.bars, self.steps_per_bar, self.input_size)
        logits = []
        for core, (a, e), (ca, ce) in zip(self.cores, self._core_slices, self._cond_slices):
            mask = sample_mask(b * self.bars, self.steps_per_bar, sampling_probability, generator)
            logits.append(core.teacher_forced(inputs[..., a:e], codes[:, ca:ce], mask, generator, self.sampling_method))
        return torch.cat(logits, dim=-1).reshape(b, self.num_steps, self.input_size)


class LinearChainDecoder(ChainDecoder):
    """ChainDecoder whose conductor is linear: z -> the used dimensions of every segment's code (one
    matrix), the other dimensions at their training mean (`rest`)."""

    def __init__(self, cores: list[LstmCoreDecoder], z_size: int, used: tuple, segments: int, seg_steps: int):
        ChainDecoder.__init__(self, cores, z_size, 1, 1, segments, seg_steps)
        del self.conductor_initial_state, self.conductor_lstm, self.code_projection
        k = len(used)
        self.code_map = Dense(z_size, segments * k)
        place = torch.zeros(k, self.cond_size)
        place[torch.arange(k), torch.tensor(used, dtype=torch.long)] = 1.0
        self.place = nn.Parameter(place, requires_grad=False)             # (used, code) 0/1
        self.rest = nn.Parameter(torch.zeros(segments, self.cond_size), requires_grad=False)

    def conductor(self, z: torch.Tensor) -> torch.Tensor:
        y = self.code_map(z).reshape(z.shape[0], self.bars, -1)
        return torch.matmul(y, self.place) + self.rest


def _short_of(shorts, name: str):
    if not isinstance(shorts, dict):          # one short model for every part
        return shorts
    if name not in shorts:
        raise ValueError(f"the chain needs the short model {name!r} (given: {sorted(shorts)})")
    return shorts[name]


class ChainVAE(nn.Module):
    """What export_onnx.export.write_package needs of a model (config, size, encoder, decoder,
    num_classes, num_steps, z_size), built around short MusicVAEs whose weights stay frozen.

    `shorts`: the short MusicVAE, or {package name: MusicVAE} for the parts of CHAIN_PARTS[config]."""

    def __init__(self, config: ModelConfig, shorts, size: ChainSize = ChainSize(), parts=None):
        super().__init__()
        parts = tuple(parts or chain_parts(config.name))
        models = [_short_of(shorts, p.short) for p in parts]
        first = models[0]
        for part, short in zip(parts, models):
            spec = dict(config.tracks[part.track])
            if short.config.hierarchical or config.bars % short.config.bars or short.config.bars != first.config.bars:
                raise ValueError(f"{config.name} cannot be chained on {short.config.name}: needs flat models "
                                 f"of one length that divides {config.bars} bars")
            if len(short.config.tracks) != 1 or {**dict(short.config.tracks[0]), "program": 0, "name": ""} != \
                    {**spec, "program": 0, "name": ""}:
                raise ValueError(f"{short.config.name} does not write {config.name}'s track {spec.get('name', part.track)}")
            if (short.size.dec_units, short.size.dec_layers) != (first.size.dec_units, first.size.dec_layers):
                raise ValueError("the short models' decoders must have one size (the step graph stacks their states)")
        self.config, self.chain_size, self.parts = config, size, parts
        self.short_configs = {p.short: m.config for p, m in zip(parts, models)}
        self.num_classes = [int(c["num_classes"]) for c in config.tracks]
        self.input_size = sum(self.num_classes)
        self.num_steps = config.num_steps
        segments, seg_steps = config.bars // first.config.bars, first.num_steps
        code = sum(m.z_size for m in models)
        slices = segments_of(self.num_classes)
        part_encoders = [PartEncoder(m.encoder, slices[p.track], self.num_classes[p.track], p.shift)
                         for p, m in zip(parts, models)]
        cores = [compose_core(m.decoder.core, p.shift) for p, m in zip(parts, models)]
        if size.linear:
            self.encoder = LinearChainEncoder(part_encoders, segments, seg_steps, code, size.used, size.z_size)
            self.decoder = LinearChainDecoder(cores, size.z_size, size.used, segments, seg_steps)
        else:
            self.encoder = ChainEncoder(part_encoders, segments, seg_steps, code, size.enc_units, size.z_size)
            self.decoder = ChainDecoder(cores, size.z_size, size.cond_units, size.cond_layers, segments, seg_steps)
        for p in self._frozen():
            p.requires_grad_(False)
        # the manifest's "size" (bridge reads only decoder/conductor fields from it)
        self.size_name = ARCHITECTURE
        self.size = ModelSize(enc_units=size.enc_units, dec_units=first.size.dec_units,
                              dec_layers=first.size.dec_layers, z_size=size.z_size,
                              cond_units=size.cond_units, cond_layers=size.cond_layers, emb_size=code,
                              bar_enc_units=first.size.enc_units)

    def _frozen(self) -> list[torch.Tensor]:
        return list(self.encoder.parts.parameters()) + list(self.decoder.cores.parameters())

    @property
    def z_size(self) -> int:
        return self.chain_size.z_size

    @property
    def code_slices(self) -> list[tuple[int, int]]:
        """Each part's columns of a segment's code (the conductor writes the parts' codes side by side)."""
        return list(self.decoder._cond_slices)

    def trained_state(self) -> dict:
        """The weights training changes (everything but the short models')."""
        frozen = {id(p) for p in self._frozen()}
        return {n: p.detach().clone() for n, p in self.named_parameters() if id(p) not in frozen}

    def one_hot(self, tokens: torch.Tensor) -> torch.Tensor:
        return one_hot(torch.as_tensor(tokens), self.num_classes)

    def forward(self, tokens: torch.Tensor, sampling_probability: float = 0.0,
                generator: torch.Generator | None = None, sample_z: bool = True):
        """As MusicVAE.forward: tokens -> (teacher-forced logits, mu, sigma) (export_onnx.evaluate)."""
        x = self.one_hot(tokens)
        mu, sigma = self.encoder(x)
        z = mu + sigma * torch.randn(mu.shape, generator=generator) if sample_z else mu
        return self.decoder(z, x, sampling_probability, generator), mu, sigma

    # what export_onnx.directions and evaluate need of a model
    @torch.no_grad()
    def encode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(self.one_hot(tokens))

    @torch.no_grad()
    def decode_argmax(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder.decode(z, 0.0)[0]

    @torch.no_grad()
    def sample(self, z: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None):
        return self.decoder.decode(z, temperature, generator)[0]


def chain_from_info(info: dict) -> ChainVAE:
    """A random-weight chain of a chain package's sizes (model.json: `size`, `training.short_models`,
    or `training.short_model` in packages of one short model), e.g. for torch-eager timings
    (export_onnx.bench_torch)."""
    from ..configs import get_config
    from ..model import MusicVAE
    s, training = info["size"], info["training"]
    shorts = {}
    for short in training.get("short_models") or [training["short_model"]]:
        shorts[short["name"]] = MusicVAE(get_config(short.get("config", short["name"])),
                                         ModelSize(enc_units=short.get("enc_units", s["bar_enc_units"]),
                                                   dec_units=s["dec_units"], dec_layers=s["dec_layers"],
                                                   z_size=short.get("z_size", s["emb_size"])))
    size = ChainSize(**training["size"]) if "size" in training else ChainSize(
        z_size=s["z_size"], enc_units=s["enc_units"], cond_units=s["cond_units"], cond_layers=s["cond_layers"])
    return ChainVAE(get_config(info["config"]), shorts, size)


def code_nll(pred: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, floor: float,
             weight: torch.Tensor | None = None) -> torch.Tensor:
    """Negative log-likelihood (nats, constants dropped) of the target codes `mu` (B, S, C) under
    N(pred, sigma^2 + floor^2), summed over segments and dimensions (each dimension times `weight`
    (C,) when given) -> (B,)."""
    var = sigma.pow(2) + floor * floor
    nll = 0.5 * (pred - mu).pow(2) / var
    return (nll if weight is None else nll * weight).sum(dim=(1, 2))
