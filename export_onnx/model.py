"""MusicVAE in torch (Roberts et al., ICML 2018), laid out like Magenta / magenta.js.

Submodules and the export interface (docs/architecture.md):

    model.encoder(inputs_onehot (B, steps, input_size)) -> (mu (B, z), sigma (B, z))
    model.decoder.conductor(z) -> (B, bars, emb)                 # hierarchical only
    model.decoder.init_state(cond) -> (c, h), each (L, B, units)  # cond = z (flat) / bar embedding
    model.decoder.step(prev_onehot, cond, c, h) -> (logits (B, input_size), c, h)
    model.decode_argmax(z) -> tokens (B, steps, tracks); model.reconstruct(tokens) -> tokens

Conventions (the exporter and the runtime rely on them):
- sigma = softplus(dense(encoding)), as Magenta TF (`encoder/sigma` dense with softplus activation);
  the encoding is concat(final forward h, final backward h) of the top bidirectional LSTM.
- Initial decoder states: `tanh(dense(cond))` of width 2 * layers * units, split in the order
  c0, h0, c1, h1, ... (magenta.js `initLstmCells`; TF flattening of a MultiRNNCell state).
- Decoder input per step = concat(previous token one-hot (B, classes), cond). The first input is zeros.
- Trio, flat: one LSTM, logits of all tracks concatenated (Magenta MultiOutCategoricalLstmDecoder).
  Trio, hierarchical: THREE core decoders (lead, bass, drums) under one conductor (Magenta
  SplitMultiOutLstmDecoder); core k sees only its own track's previous one-hot + the embedding; the
  state tensors stack the cores' layers: rows [0, L) lead, [L, 2L) bass, [2L, 3L) drums.
- Conductor: LSTM stack initialised by tanh(dense(z)), input a constant zero of width 1 each bar,
  output = top layer h = the bar embedding (so emb size = conductor units).
- In training the hierarchical core decoders run all bars in parallel (B*bars sequences of
  steps_per_bar). Teacher forcing gives exactly the sequential result (the first input of bar i is
  the true last token of bar i-1). Scheduled sampling is applied *within* bars: the first input of a
  bar is always the true previous token (as Magenta, whose core decoder runs its sampling helper per
  bar).
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bridge.core.notes import STEPS_PER_BAR

from .configs import ModelConfig, ModelSize, get_config
from .lstm import BidirectionalLSTM, Dense, StackedLSTM

LN2 = math.log(2.0)


# --------------------------------------------------------------------------------------------- helpers
def one_hot(tokens: torch.Tensor, num_classes: list[int]) -> torch.Tensor:
    """(..., tracks) int tokens -> (..., sum(num_classes)) float32, tracks side by side."""
    tokens = tokens.long()
    return torch.cat([F.one_hot(tokens[..., k], n).float() for k, n in enumerate(num_classes)], dim=-1)


def segments(num_classes: list[int]) -> list[tuple[int, int]]:
    out, start = [], 0
    for n in num_classes:
        out.append((start, start + n))
        start += n
    return out


def argmax_tokens(logits: torch.Tensor, num_classes: list[int]) -> torch.Tensor:
    """(..., input_size) -> (..., tracks) argmax per track segment."""
    return torch.stack([logits[..., a:b].argmax(-1) for a, b in segments(num_classes)], dim=-1)


def choose(logits: torch.Tensor, num_classes: list[int], temperature: float = 0.0,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Pick one class per track segment of (N, input_size) logits; return the concatenated one-hot.

    temperature 0 = argmax; otherwise a categorical sample of softmax(logits / temperature), drawn by
    Gumbel-max with uniform noise from `generator` (a CPU generator; the noise is moved to the device,
    so results are identical on CPU and GPU and resumable).
    """
    if temperature > 0:
        u = torch.rand(logits.shape, generator=generator, dtype=torch.float32).to(logits.device)
        gumbel = -torch.log(-torch.log(u.clamp_min(1e-10)).clamp_min(1e-10))
        logits = logits.detach() / temperature + gumbel
    return one_hot(argmax_tokens(logits.detach(), num_classes), num_classes)


def shift_right(x: torch.Tensor) -> torch.Tensor:
    """(B, T, D): inputs for teacher forcing, x[t-1] at t and zeros at t=0."""
    return torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)


def initial_state(dense: Dense, cond: torch.Tensor, layers: int, units: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """tanh(dense(cond)) split as c0, h0, c1, h1, ... -> (c, h) each (layers, B, units)."""
    s = torch.tanh(dense(cond)).reshape(-1, layers, 2, units)
    c = s[:, :, 0].permute(1, 0, 2).contiguous()
    h = s[:, :, 1].permute(1, 0, 2).contiguous()
    return c, h


def word_dropout(inputs: torch.Tensor, rate: float, generator: torch.Generator | None) -> torch.Tensor:
    """Zero the previous-token one-hot of (B, T, D) inputs at random steps (rate per step): the
    decoder must then lean on its conditioning (z / bar embedding) instead of the previous token,
    the remedy of Bowman et al. (2016) against decoders that ignore z."""
    if rate <= 0:
        return inputs
    keep = torch.rand(inputs.shape[:2], generator=generator) >= rate
    return inputs * keep.to(inputs.device, inputs.dtype)[..., None]


def sample_mask(n: int, steps: int, probability: float, generator: torch.Generator | None) -> torch.Tensor | None:
    """Scheduled sampling draws (CPU bool (n, steps)): True = feed the model's own sample at that
    step. Step 0 is never sampled (its input is the fixed first input)."""
    if probability <= 0:
        return None
    m = torch.rand(n, steps, generator=generator) < probability
    m[:, 0] = False
    return m


# --------------------------------------------------------------------------------------------- encoders
class BidirectionalLstmEncoder(nn.Module):
    """Single-layer BiLSTM over the one-hot sequence; concat(final fw h, final bw h) -> mu, sigma."""

    def __init__(self, input_size: int, units: int, z_size: int):
        super().__init__()
        self.lstm = BidirectionalLSTM(input_size, units)
        self.mu = Dense(2 * units, z_size)
        self.sigma = Dense(2 * units, z_size)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.lstm(inputs)
        return self.mu(e), F.softplus(self.sigma(e))


class HierarchicalEncoder(nn.Module):
    """magenta.js HierarchicalEncoder: a BiLSTM per bar (bars run as one batch) -> bar encodings,
    a BiLSTM over the bar encodings -> mu, sigma."""

    def __init__(self, input_size: int, bar_units: int, units: int, z_size: int, bars: int,
                 steps_per_bar: int = STEPS_PER_BAR):
        super().__init__()
        self.bars, self.steps_per_bar, self.input_size = bars, steps_per_bar, input_size
        self.bar_lstm = BidirectionalLSTM(input_size, bar_units)
        self.lstm = BidirectionalLSTM(2 * bar_units, units)
        self.mu = Dense(2 * units, z_size)
        self.sigma = Dense(2 * units, z_size)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bars = inputs.reshape(-1, self.steps_per_bar, self.input_size)
        enc = self.bar_lstm(bars).reshape(-1, self.bars, 2 * self.bar_lstm.units)
        e = self.lstm(enc)
        return self.mu(e), F.softplus(self.sigma(e))


# --------------------------------------------------------------------------------------------- decoders
class LstmCoreDecoder(nn.Module):
    """An autoregressive LSTM decoder conditioned on a vector (z, or a bar embedding).

    Parameters: `z_to_initial_state` (Dense cond -> 2*layers*units), `lstm` (StackedLSTM over
    [prev one-hot, cond]), `output_projection` (Dense units -> sum(num_classes)).
    """

    def __init__(self, num_classes: list[int], cond_size: int, units: int, layers: int):
        super().__init__()
        self.num_classes = list(num_classes)
        self.out_size = sum(self.num_classes)
        self.cond_size, self.units, self.layers = cond_size, units, layers
        self.z_to_initial_state = Dense(cond_size, 2 * layers * units)
        self.lstm = StackedLSTM(self.out_size + cond_size, units, layers)
        self.output_projection = Dense(units, self.out_size)

    def init_state(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return initial_state(self.z_to_initial_state, cond, self.layers, self.units)

    def step(self, prev: torch.Tensor, cond: torch.Tensor, c: torch.Tensor, h: torch.Tensor):
        out, c, h = self.lstm.step(torch.cat([prev, cond], dim=-1), c, h)
        return self.output_projection(out), c, h

    def teacher_forced(self, inputs: torch.Tensor, cond: torch.Tensor, mask: torch.Tensor | None = None,
                       generator: torch.Generator | None = None, method: str = "two_pass") -> torch.Tensor:
        """inputs (N, T, out) already shifted, cond (N, cond) -> logits (N, T, out).

        `mask` (CPU bool (N, T)) marks the steps whose input is replaced by a sample from the
        model's own output distribution (scheduled sampling), by `method`:
        - "two_pass" (training default): pass 1 runs the fused LSTM teacher-forced over the whole
          sequence without gradients and draws a token from its output at every step; at the masked
          steps that token replaces the true previous token, and pass 2 runs the fused LSTM over the
          mixed inputs with gradients. Each sampled token is drawn given the TRUE prefix (pass 1),
          not given the model's earlier samples, so at p > 0 this is an approximation of scheduled
          sampling (docs/training.md); it costs two fused passes instead of a Python loop.
        - "stepwise" (reference, Magenta's helper): the sequence is cut at every step where some row
          samples and the sample is drawn from the output of the mixed prefix.
        Without a mask both are the plain fused teacher-forced pass.
        """
        if mask is None or not bool(mask.any()):
            return self._fused(inputs, cond)
        if method == "two_pass":
            with torch.no_grad():
                logits = self._fused(inputs, cond)
                drawn = choose(logits[:, :-1].reshape(-1, self.out_size), self.num_classes, 1.0, generator)
                sampled = torch.cat([inputs[:, :1], drawn.reshape(inputs.shape[0], -1, self.out_size)], dim=1)
            mixed = torch.where(mask.to(inputs.device)[..., None], sampled, inputs)
            return self._fused(mixed, cond)
        if method != "stepwise":
            raise ValueError(f"unknown scheduled sampling method {method!r}")
        return self._stepwise_sampled(inputs, cond, mask, generator)

    def _fused(self, inputs: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        c, h = self.init_state(cond)
        cond_seq = cond[:, None, :].expand(inputs.shape[0], inputs.shape[1], self.cond_size)
        out, _, _ = self.lstm(torch.cat([inputs, cond_seq], dim=-1), c, h)
        return self.output_projection(out)

    def _stepwise_sampled(self, inputs, cond, mask, generator) -> torch.Tensor:
        n, t_len, _ = inputs.shape
        c, h = self.init_state(cond)
        cond_seq = cond[:, None, :].expand(n, t_len, self.cond_size)
        cut = torch.nonzero(mask.any(0)).flatten().tolist()
        outs, pos, first = [], 0, inputs[:, 0]
        for t in cut + [t_len]:
            seg = torch.cat([first[:, None], inputs[:, pos + 1:t]], dim=1)
            out, c, h = self.lstm(torch.cat([seg, cond_seq[:, pos:t]], dim=-1), c, h)
            outs.append(out)
            if t < t_len:
                sampled = choose(self.output_projection(out[:, -1]), self.num_classes, 1.0, generator)
                row = mask[:, t].to(inputs.device)[:, None]
                first = torch.where(row, sampled, inputs[:, t])
            pos = t
        return self.output_projection(torch.cat(outs, dim=1))


class DecoderBase(nn.Module):
    """Training options (set by the trainer, not part of the weights): `sampling_method` for
    scheduled sampling ("two_pass" | "stepwise", see LstmCoreDecoder.teacher_forced) and
    `input_dropout`, the word-dropout rate on the previous-token input while training."""

    hierarchical = False
    sampling_method = "two_pass"
    input_dropout = 0.0

    def training_inputs(self, targets: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        inputs = shift_right(targets)
        return word_dropout(inputs, self.input_dropout, generator) if self.training else inputs
    num_classes: list[int]
    num_steps: int

    def decode(self, z: torch.Tensor, temperature: float = 0.0, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Free-running decode through the export interface -> (tokens (B, steps, tracks), logits)."""
        return _free_decode(self, z, temperature, generator)


class FlatDecoder(DecoderBase):
    """One LSTM over the whole sequence, conditioned on z (multi-out: all tracks' logits side by side)."""

    hierarchical = False

    def __init__(self, num_classes: list[int], z_size: int, units: int, layers: int, num_steps: int):
        super().__init__()
        self.num_classes, self.num_steps = list(num_classes), num_steps
        self.input_size = sum(self.num_classes)
        self.cond_size, self.units, self.layers, self.state_layers = z_size, units, layers, layers
        self.core = LstmCoreDecoder(self.num_classes, z_size, units, layers)

    def init_state(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.core.init_state(cond)

    def step(self, prev_onehot: torch.Tensor, cond: torch.Tensor, state_c: torch.Tensor, state_h: torch.Tensor):
        return self.core.step(prev_onehot, cond, state_c, state_h)

    def forward(self, z: torch.Tensor, targets: torch.Tensor, sampling_probability: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Training: targets one-hot (B, steps, input_size) -> logits (B, steps, input_size)."""
        inputs = self.training_inputs(targets, generator)
        mask = sample_mask(z.shape[0], self.num_steps, sampling_probability, generator)
        return self.core.teacher_forced(inputs, z, mask, generator, self.sampling_method)

    def teacher_forced_stepwise(self, z: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The teacher-forced logits computed only through init_state/step (reference path)."""
        c, h = self.init_state(z)
        prev, outs = torch.zeros_like(targets[:, 0]), []
        for t in range(self.num_steps):
            logits, c, h = self.step(prev, z, c, h)
            outs.append(logits)
            prev = targets[:, t]
        return torch.stack(outs, dim=1)


class SplitCores:
    """init_state/step for decoders made of per-track cores (`self.cores`, `self._core_slices` of the
    one-hot, `self.layers` each) whose states are stacked core after core: (cores * layers, B, units).
    Every core reads the whole cond, unless `self._cond_slices` gives each core its columns."""

    def core_conds(self, cond: torch.Tensor) -> list[torch.Tensor]:
        slices = getattr(self, "_cond_slices", None)
        return [cond] * len(self.cores) if slices is None else [cond[:, a:b] for a, b in slices]

    def init_state(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cs, hs = zip(*[core.init_state(x) for core, x in zip(self.cores, self.core_conds(cond))])
        return torch.cat(cs, dim=0), torch.cat(hs, dim=0)

    def step(self, prev_onehot: torch.Tensor, cond: torch.Tensor, state_c: torch.Tensor, state_h: torch.Tensor):
        logits, cs, hs = [], [], []
        conds = self.core_conds(cond)
        for k, (core, (a, b)) in enumerate(zip(self.cores, self._core_slices)):
            rows = slice(k * self.layers, (k + 1) * self.layers)
            lg, c, h = core.step(prev_onehot[:, a:b], conds[k], state_c[rows], state_h[rows])
            logits.append(lg)
            cs.append(c)
            hs.append(h)
        return torch.cat(logits, dim=-1), torch.cat(cs, dim=0), torch.cat(hs, dim=0)


class HierarchicalDecoder(SplitCores, DecoderBase):
    """Conductor LSTM (z -> one embedding per bar) + core decoder(s) per bar.

    `split_tracks=True` (trio): one core decoder per track (lead, bass, drums), each over its own
    track's classes, sharing the conductor. Otherwise one core decoder over all tracks.
    """

    hierarchical = True

    def __init__(self, num_classes: list[int], z_size: int, cond_units: int, cond_layers: int,
                 units: int, layers: int, bars: int, steps_per_bar: int = STEPS_PER_BAR,
                 split_tracks: bool = False):
        super().__init__()
        self.num_classes, self.bars, self.steps_per_bar = list(num_classes), bars, steps_per_bar
        self.num_steps = bars * steps_per_bar
        self.input_size = sum(self.num_classes)
        self.z_size, self.cond_units, self.cond_layers = z_size, cond_units, cond_layers
        self.emb_size = self.cond_size = cond_units
        self.units, self.layers = units, layers
        self.conductor_initial_state = Dense(z_size, 2 * cond_layers * cond_units)
        self.conductor_lstm = StackedLSTM(1, cond_units, cond_layers)
        groups = [[n] for n in self.num_classes] if split_tracks else [self.num_classes]
        self.cores = nn.ModuleList([LstmCoreDecoder(g, cond_units, units, layers) for g in groups])
        self.state_layers = layers * len(self.cores)
        # input_size slice of each core
        self._core_slices = segments([sum(g) for g in groups])

    # -- export interface
    def conductor(self, z: torch.Tensor) -> torch.Tensor:
        c, h = initial_state(self.conductor_initial_state, z, self.cond_layers, self.cond_units)
        x = z.new_zeros(z.shape[0], self.bars, 1)
        out, _, _ = self.conductor_lstm(x, c, h)
        return out

    # -- training
    def forward(self, z: torch.Tensor, targets: torch.Tensor, sampling_probability: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """All bars in parallel: (B, steps, input) targets -> logits (B, steps, input)."""
        b = z.shape[0]
        emb = self.conductor(z).reshape(b * self.bars, self.emb_size)
        inputs = self.training_inputs(targets, generator).reshape(b * self.bars, self.steps_per_bar, self.input_size)
        logits = []
        for core, (a, e) in zip(self.cores, self._core_slices):
            mask = sample_mask(b * self.bars, self.steps_per_bar, sampling_probability, generator)
            logits.append(core.teacher_forced(inputs[..., a:e], emb, mask, generator, self.sampling_method))
        return torch.cat(logits, dim=-1).reshape(b, self.num_steps, self.input_size)

    def teacher_forced_stepwise(self, z: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Bar after bar through conductor/init_state/step only (the runtime's path), teacher forced."""
        emb = self.conductor(z)
        prev, outs = torch.zeros_like(targets[:, 0]), []
        for i in range(self.bars):
            cond = emb[:, i]
            c, h = self.init_state(cond)
            for j in range(self.steps_per_bar):
                logits, c, h = self.step(prev, cond, c, h)
                outs.append(logits)
                prev = targets[:, i * self.steps_per_bar + j]
        return torch.stack(outs, dim=1)


def _free_decode(decoder, z: torch.Tensor, temperature: float, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode through the export interface exactly as the runtime does; returns (tokens, logits)."""
    b = z.shape[0]
    prev = z.new_zeros(b, decoder.input_size)
    outs, chosen = [], []
    if decoder.hierarchical:
        emb = decoder.conductor(z)
        conds = [emb[:, i] for i in range(decoder.bars)]
        per_bar = decoder.steps_per_bar
    else:
        conds, per_bar = [z], decoder.num_steps
    for cond in conds:
        c, h = decoder.init_state(cond)
        for _ in range(per_bar):
            logits, c, h = decoder.step(prev, cond, c, h)
            prev = choose(logits, decoder.num_classes, temperature, generator)
            outs.append(logits)
            chosen.append(prev)
    onehots = torch.stack(chosen, dim=1)
    return argmax_tokens(onehots, decoder.num_classes), torch.stack(outs, dim=1)


# --------------------------------------------------------------------------------------------- the VAE
def resolve_size(config: ModelConfig, size: str | ModelSize | dict) -> tuple[str, ModelSize]:
    if isinstance(size, ModelSize):
        return "custom", size
    if isinstance(size, dict):
        return "custom", ModelSize(**size)
    return size, config.size(size)


class MusicVAE(nn.Module):
    def __init__(self, config: ModelConfig | str, size: str | ModelSize | dict = "small"):
        super().__init__()
        self.config = get_config(config) if isinstance(config, str) else config
        self.size_name, self.size = resolve_size(self.config, size)
        s, cfg = self.size, self.config
        codec = cfg.codec
        self.num_classes = codec.num_classes
        self.input_size = codec.input_size
        self.num_steps = cfg.num_steps
        if cfg.hierarchical:
            if s.emb_size not in (0, s.cond_units):
                raise ValueError(f"{cfg.name}: the bar embedding is the conductor's top-layer output, "
                                 f"so emb_size ({s.emb_size}) must equal cond_units ({s.cond_units})")
            self.encoder = HierarchicalEncoder(self.input_size, s.bar_enc_units or s.enc_units, s.enc_units,
                                               s.z_size, cfg.bars)
            self.decoder = HierarchicalDecoder(self.num_classes, s.z_size, s.cond_units, s.cond_layers,
                                               s.dec_units, s.dec_layers, cfg.bars,
                                               split_tracks=len(self.num_classes) > 1)
        else:
            self.encoder = BidirectionalLstmEncoder(self.input_size, s.enc_units, s.z_size)
            self.decoder = FlatDecoder(self.num_classes, s.z_size, s.dec_units, s.dec_layers, self.num_steps)

    @property
    def z_size(self) -> int:
        return self.size.z_size

    def one_hot(self, tokens: torch.Tensor) -> torch.Tensor:
        return one_hot(torch.as_tensor(tokens), self.num_classes)

    def forward(self, tokens: torch.Tensor, sampling_probability: float = 0.0,
                generator: torch.Generator | None = None, sample_z: bool = True):
        """tokens (B, steps, tracks) -> (logits (B, steps, input_size), mu, sigma).

        z = mu + sigma * eps with eps ~ N(0, I) from `generator` (CPU) when sample_z, else mu.
        """
        x = self.one_hot(tokens)
        mu, sigma = self.encoder(x)
        if sample_z:
            eps = torch.randn(mu.shape, generator=generator).to(mu.device)
            z = mu + sigma * eps
        else:
            z = mu
        logits = self.decoder(z, x, sampling_probability, generator)
        return logits, mu, sigma

    @torch.no_grad()
    def decode_argmax(self, z: torch.Tensor, return_logits: bool = False):
        tokens, logits = self.decoder.decode(z, 0.0)
        return (tokens, logits) if return_logits else tokens

    @torch.no_grad()
    def sample(self, z: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None):
        return self.decoder.decode(z, temperature, generator)[0]

    @torch.no_grad()
    def encode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(self.one_hot(tokens))

    @torch.no_grad()
    def reconstruct(self, tokens: torch.Tensor) -> torch.Tensor:
        """Argmax decode from the posterior mean (no teacher forcing) -> tokens (B, steps, tracks)."""
        mu, _ = self.encode(tokens)
        return self.decode_argmax(mu)


# --------------------------------------------------------------------------------------------- losses
def kl_divergence(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) in nats, summed over z -> (B,)."""
    return 0.5 * (mu.pow(2) + sigma.pow(2) - 1.0 - 2.0 * torch.log(sigma.clamp_min(1e-12))).sum(-1)


def reconstruction_loss(logits: torch.Tensor, tokens: torch.Tensor, num_classes: list[int]) -> torch.Tensor:
    """Cross-entropy per track, summed over steps -> (B, tracks) in nats."""
    tokens = tokens.long()
    out = []
    for k, (a, b) in enumerate(segments(num_classes)):
        lg = logits[..., a:b]
        ce = F.cross_entropy(lg.reshape(-1, b - a), tokens[..., k].reshape(-1), reduction="none")
        out.append(ce.reshape(tokens.shape[:-1]).sum(-1))
    return torch.stack(out, dim=-1)


def vae_loss(r_loss: torch.Tensor, kl: torch.Tensor, beta: float, free_bits: float) -> torch.Tensor:
    """Magenta's objective: mean_b(r_loss) + beta * mean_b(max(KL_b - free_bits * ln 2, 0)).

    `r_loss` (B,) nats (summed over tracks and steps), `kl` (B,) nats, `free_bits` in bits (Magenta
    `free_bits` hparam; converted to nats as Magenta does)."""
    kl_cost = torch.clamp(kl - free_bits * LN2, min=0.0)
    return r_loss.mean() + beta * kl_cost.mean()


def step_accuracy(logits: torch.Tensor, tokens: torch.Tensor, num_classes: list[int]) -> torch.Tensor:
    """Fraction of steps whose argmax equals the target, per track -> (tracks,)."""
    pred = argmax_tokens(logits, num_classes)
    return (pred == tokens.long()).float().reshape(-1, len(num_classes)).mean(0)


# --------------------------------------------------------------------------------------------- checkpoints
def checkpoint_file(path: str | Path, which: str = "best") -> Path:
    """A checkpoint file as given, or a run directory's `best.pt` / `latest.pt`."""
    path = Path(path)
    return path / f"{which}.pt" if path.is_dir() else path


def load_checkpoint(path: str | Path, which: str = "best", map_location: str = "cpu"
                    ) -> tuple[MusicVAE, dict]:
    """Load a trained model from a checkpoint file or a run directory (`best.pt` / `latest.pt`).

    Returns (model in eval mode, checkpoint dict without the big state entries)."""
    ckpt = torch.load(checkpoint_file(path, which), map_location=map_location, weights_only=False)
    config = get_config(ckpt["config"])
    if ckpt.get("recipe"):
        from dataclasses import replace
        from .configs import TrainRecipe
        recipe = dict(ckpt["recipe"])
        recipe["augment_semitones"] = tuple(recipe.get("augment_semitones", (0, 0)))
        config = replace(config, recipe=TrainRecipe(**recipe))
    model = MusicVAE(config, ModelSize(**ckpt["size"]))
    model.size_name = ckpt.get("size_name", "custom")
    model.load_state_dict(ckpt["model"])
    model.eval()
    info = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer", "rng")}
    return model, info
