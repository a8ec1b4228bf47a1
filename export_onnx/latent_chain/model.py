"""The latent-chain VAE's torch modules (export_onnx.latent_chain describes the method)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..configs import ModelConfig, ModelSize
from ..lstm import BidirectionalLSTM, Dense, StackedLSTM
from ..model import DecoderBase, LstmCoreDecoder, SplitCores, initial_state, one_hot, sample_mask

ARCHITECTURE = "latent_chain"


@dataclass(frozen=True)
class ChainSize:
    """The trained parts' sizes (the short model's parts keep theirs)."""
    z_size: int = 256
    enc_units: int = 256      # BiLSTM over the segment codes, per direction
    cond_units: int = 256     # conductor LSTM units per layer
    cond_layers: int = 2


class ChainEncoder(nn.Module):
    """One-hot tokens (B, segments * seg_steps, input) -> (mu, sigma): the short model's encoder on
    each segment (its posterior means: the codes), then a BiLSTM over the codes."""

    def __init__(self, short_encoder: nn.Module, segments: int, seg_steps: int, code_size: int,
                 units: int, z_size: int):
        super().__init__()
        self.short = short_encoder
        self.segments, self.seg_steps, self.code_size = segments, seg_steps, code_size
        self.lstm = BidirectionalLSTM(code_size, units)
        self.mu = Dense(2 * units, z_size)
        self.sigma = Dense(2 * units, z_size)

    def codes(self, inputs: torch.Tensor) -> torch.Tensor:
        pieces = inputs.reshape(-1, self.seg_steps, inputs.shape[-1])
        return self.short(pieces)[0].reshape(-1, self.segments, self.code_size)

    def from_codes(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.lstm(codes)
        return self.mu(e), F.softplus(self.sigma(e))

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.from_codes(self.codes(inputs))


class ChainDecoder(SplitCores, DecoderBase):
    """Conductor (z -> one short-model code per segment) + the short model's core decoder.

    Presents the hierarchical decoder's export interface (`conductor`, `init_state`, `step`, `bars`
    = segments, `steps_per_bar` = steps per segment, `emb_size` = the code size), so the exporter
    and export_onnx.step_graph treat it like any hierarchical decoder with one core."""

    hierarchical = True

    def __init__(self, core: LstmCoreDecoder, z_size: int, cond_units: int, cond_layers: int,
                 segments: int, seg_steps: int):
        super().__init__()
        self.num_classes = list(core.num_classes)
        self.bars, self.steps_per_bar = segments, seg_steps
        self.num_steps = segments * seg_steps
        self.input_size = sum(self.num_classes)
        self.z_size, self.cond_units, self.cond_layers = z_size, cond_units, cond_layers
        self.emb_size = self.cond_size = core.cond_size
        self.units, self.layers = core.units, core.layers
        self.conductor_initial_state = Dense(z_size, 2 * cond_layers * cond_units)
        self.conductor_lstm = StackedLSTM(1, cond_units, cond_layers)
        self.code_projection = Dense(cond_units, core.cond_size)   # codes are not bounded like h
        self.cores = nn.ModuleList([core])
        self.state_layers = core.layers
        self._core_slices = [(0, self.input_size)]

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
        mask = sample_mask(b * self.bars, self.steps_per_bar, sampling_probability, generator)
        logits = self.cores[0].teacher_forced(inputs, codes, mask, generator, self.sampling_method)
        return logits.reshape(b, self.num_steps, self.input_size)


class ChainVAE(nn.Module):
    """What export_onnx.export.write_package needs of a model (config, size, encoder, decoder,
    num_classes, num_steps, z_size), built around a short MusicVAE whose weights stay frozen."""

    def __init__(self, config: ModelConfig, short, size: ChainSize = ChainSize()):
        super().__init__()
        if short.config.hierarchical or short.config.kind != config.kind or config.bars % short.config.bars:
            raise ValueError(f"{config.name} cannot be chained on {short.config.name}: needs a flat "
                             f"{config.kind} model whose bars divide {config.bars}")
        if [dict(t) for t in short.config.tracks] != [dict(t) for t in config.tracks]:
            raise ValueError(f"{short.config.name} and {config.name} have different tracks")
        self.config, self.chain_size, self.short_config = config, size, short.config
        self.num_classes, self.input_size = list(short.num_classes), short.input_size
        self.num_steps = config.num_steps
        segments, seg_steps = config.bars // short.config.bars, short.num_steps
        code = short.z_size
        self.encoder = ChainEncoder(short.encoder, segments, seg_steps, code, size.enc_units, size.z_size)
        self.decoder = ChainDecoder(short.decoder.core, size.z_size, size.cond_units, size.cond_layers,
                                    segments, seg_steps)
        for p in list(self.encoder.short.parameters()) + list(self.decoder.cores.parameters()):
            p.requires_grad_(False)
        # the manifest's "size" (bridge reads only decoder/conductor fields from it)
        self.size_name = ARCHITECTURE
        self.size = ModelSize(enc_units=size.enc_units, dec_units=short.size.dec_units,
                              dec_layers=short.size.dec_layers, z_size=size.z_size,
                              cond_units=size.cond_units, cond_layers=size.cond_layers, emb_size=code,
                              bar_enc_units=short.size.enc_units)

    @property
    def z_size(self) -> int:
        return self.chain_size.z_size

    def trained_state(self) -> dict:
        """The weights training changes (everything but the short model's)."""
        frozen = {id(p) for p in list(self.encoder.short.parameters()) + list(self.decoder.cores.parameters())}
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
    """A random-weight chain of a chain package's sizes (model.json: `size`, `training.short_model`),
    e.g. for torch-eager timings (export_onnx.bench_torch)."""
    from ..configs import get_config
    from ..model import MusicVAE
    s, short = info["size"], info["training"]["short_model"]
    short_model = MusicVAE(get_config(short.get("config", short["name"])),
                           ModelSize(enc_units=s["bar_enc_units"], dec_units=s["dec_units"],
                                     dec_layers=s["dec_layers"], z_size=s["emb_size"]))
    size = ChainSize(z_size=s["z_size"], enc_units=s["enc_units"], cond_units=s["cond_units"],
                     cond_layers=s["cond_layers"])
    return ChainVAE(get_config(info["config"]), short_model, size)


def code_nll(pred: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, floor: float) -> torch.Tensor:
    """Negative log-likelihood (nats, constants dropped) of the target codes `mu` (B, S, C) under
    N(pred, sigma^2 + floor^2), summed over segments and dimensions -> (B,)."""
    var = sigma.pow(2) + floor * floor
    return (0.5 * (pred - mu).pow(2) / var).sum(dim=(1, 2))
