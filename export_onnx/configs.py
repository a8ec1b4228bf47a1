"""Every model configuration in one readable place.

A config names the data (window length, codec per track), the architecture (flat or hierarchical,
sizes for "small" and the paper's "full"), and the training recipe (MusicVAE paper appendix).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from bridge.core.codecs import DrumCodec, MelodyCodec, SequenceCodec
from bridge.core.notes import STEPS_PER_BAR

MEL_MIN_PITCH, MEL_MAX_PITCH = 21, 108  # magenta.js range, 90 classes


@dataclass(frozen=True)
class ModelSize:
    enc_units: int            # per direction, bidirectional LSTM
    dec_units: int            # core / flat decoder LSTM units per layer
    dec_layers: int
    z_size: int
    cond_units: int = 0       # conductor LSTM units per layer (hierarchical only)
    cond_layers: int = 2
    emb_size: int = 0         # bar embedding size = conductor top-layer output, so = cond_units (hierarchical only)
    bar_enc_units: int = 0    # hierarchical encoder: per-bar BiLSTM units per direction


@dataclass(frozen=True)
class TrainRecipe:
    batch_size: int = 64
    learning_rate: float = 1e-3
    min_learning_rate: float = 1e-5
    decay_rate: float = 0.9999           # lr = (lr0 - min) * decay^step + min
    max_beta: float = 0.2
    beta_rate: float = 0.99999            # beta = (1 - rate^step) * max_beta
    free_bits: float = 48.0               # bits of KL not penalised (Magenta: free_nats = free_bits * ln 2)
    sampling_schedule: str = "inverse_sigmoid"
    sampling_rate: float = 1000.0         # k in k / (k + exp(step / k))
    grad_clip: float = 1.0
    augment_semitones: tuple[int, int] = (-5, 6)   # random transposition, both ends included
    validate_every: int = 200
    checkpoint_every: int = 500
    # "paper": beta and scheduled sampling follow the per-step rates above (beta_rate, sampling_rate),
    # sized for ~10^5-10^6 steps. "run": both are sized to the planned run (--max-steps and/or
    # --max-minutes), because a CPU run of a few thousand steps never gets past the paper's start:
    # beta rises linearly to max_beta by `beta_warmup` of the run, the sampling probability rises
    # linearly to `final_sampling_probability` by `sampling_ramp` of the run.
    schedule: str = "run"
    beta_warmup: float = 0.4
    sampling_ramp: float = 0.7
    final_sampling_probability: float = 0.5
    sampling_method: str = "two_pass"      # "two_pass" (fused, training) | "stepwise" (reference)
    input_dropout: float = 0.0             # word dropout on the decoder's previous-token input
    precision: str = "fp32"                # "fp32" | "bf16" (CPU autocast; see docs/training.md)


@dataclass(frozen=True)
class ModelConfig:
    name: str
    kind: str                              # melody | drums | trio
    bars: int
    tracks: tuple[dict, ...]               # codec specs, see bridge.codecs
    hierarchical: bool
    sizes: dict = field(default_factory=dict)   # "small" / "full" -> ModelSize
    recipe: TrainRecipe = TrainRecipe()

    @property
    def num_steps(self) -> int:
        return self.bars * STEPS_PER_BAR

    @property
    def codec(self) -> SequenceCodec:
        return SequenceCodec.from_spec(list(self.tracks))

    def size(self, name: str = "small") -> ModelSize:
        return self.sizes[name]

    def to_dict(self, size: str = "small") -> dict:
        d = asdict(self)
        d["size_name"] = size
        d["size"] = asdict(self.size(size))
        d["num_steps"] = self.num_steps
        return d


def _melody(name: str = "melody", program: int = 0) -> dict:
    return dict(MelodyCodec(MEL_MIN_PITCH, MEL_MAX_PITCH, program).spec(), name=name)


def _drums() -> dict:
    return dict(DrumCodec().spec(), name="drums")


MELODY = (_melody(),)
DRUMS = (_drums(),)
TRIO = (_melody("lead", 0), _melody("bass", 33), _drums())

FLAT_2BAR_SIZES = {
    # paper: 2048-unit BiLSTM encoder, 3x2048 decoder, z 512; Magenta "small": 512 / 3x512? we keep 2 layers
    "small": ModelSize(enc_units=256, dec_units=256, dec_layers=2, z_size=128),
    "full": ModelSize(enc_units=2048, dec_units=2048, dec_layers=3, z_size=512),
}
HIER_16BAR_SIZES = {
    "small": ModelSize(enc_units=256, dec_units=256, dec_layers=2, z_size=256,
                       cond_units=256, cond_layers=2, emb_size=256, bar_enc_units=256),
    "full": ModelSize(enc_units=1024, dec_units=1024, dec_layers=2, z_size=512,
                      cond_units=1024, cond_layers=2, emb_size=1024, bar_enc_units=1024),
}
# the trio's one-hot is 692 wide and it has three core decoders: a narrower small size keeps its
# package under ~15 MB with fp16 weights
TRIO_16BAR_SIZES = {
    "small": ModelSize(enc_units=192, dec_units=192, dec_layers=2, z_size=256,
                       cond_units=192, cond_layers=2, emb_size=192, bar_enc_units=128),
    "full": HIER_16BAR_SIZES["full"],
}
# 16-bar melody: at the 256-unit small size the hierarchical encoder collapsed from the first steps
# (posterior-mean spread 0.0002, run of 2,750 steps); with these narrower sizes it did not (0.03-0.23
# over the same 400-step probe), so mel_16bar uses them
MEL_16BAR_SIZES = {
    "small": TRIO_16BAR_SIZES["small"],
    "full": HIER_16BAR_SIZES["full"],
}
FLAT_16BAR_SIZES = {
    "small": ModelSize(enc_units=256, dec_units=512, dec_layers=2, z_size=256),
    "full": ModelSize(enc_units=2048, dec_units=2048, dec_layers=3, z_size=512),
}

CONFIGS: dict[str, ModelConfig] = {c.name: c for c in [
    # 2-bar models: the paper's appendix, 48 free bits and beta 0.2 (mel_2bar trained with 0 free
    # bits / beta 0.5 until stop 14, and its KL never came down: 212 bits)
    ModelConfig("mel_2bar", "melody", 2, MELODY, False, FLAT_2BAR_SIZES,
                TrainRecipe(free_bits=48.0, max_beta=0.2)),
    ModelConfig("drums_2bar", "drums", 2, DRUMS, False, FLAT_2BAR_SIZES),
    # 16-bar models: 256 free bits, beta 0.2; a lower final sampling probability (a 256-step
    # free-running decode drifts further) and word dropout, so the core decoders lean on the bar
    # embedding (the trio's decoder ignored z before)
    ModelConfig("mel_16bar", "melody", 16, MELODY, True, MEL_16BAR_SIZES,
                TrainRecipe(batch_size=32, free_bits=256.0, max_beta=0.2, final_sampling_probability=0.3,
                            input_dropout=0.2)),
    ModelConfig("trio_16bar", "trio", 16, TRIO, True, TRIO_16BAR_SIZES,
                TrainRecipe(batch_size=32, free_bits=256.0, max_beta=0.2, final_sampling_probability=0.3,
                            input_dropout=0.2)),
    ModelConfig("mel_16bar_flat", "melody", 16, MELODY, False, FLAT_16BAR_SIZES,
                TrainRecipe(batch_size=32, free_bits=256.0, max_beta=0.2)),
    ModelConfig("trio_16bar_flat", "trio", 16, TRIO, False, FLAT_16BAR_SIZES,
                TrainRecipe(batch_size=32, free_bits=256.0, max_beta=0.2)),
]}


def get_config(name: str) -> ModelConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise KeyError(f"unknown config {name!r}; known: {', '.join(CONFIGS)}") from None


def with_recipe(config: ModelConfig, **changes) -> ModelConfig:
    return replace(config, recipe=replace(config.recipe, **changes))
