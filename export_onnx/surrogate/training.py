"""Training a surrogate encoder against a frozen trio model, on the shared loop (export_onnx.trainer).

The targets are the trio encoder's posterior on the same batch (pitch-augmented the same way);
the learning rate decays as the MusicVAE's does; the checkpoint (surrogate.pt) is the best on the
validation split, and at the end the best is evaluated on the held-out split (metrics.json).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from ..configs import ModelConfig, ModelSize
from ..model import MusicVAE, load_checkpoint
from ..train import augment_batch
from ..trainer import BatchStream, ExponentialDecay, Trainer
from .encoder import CHECKPOINT, LOSSES, SurrogateEncoder, init_from_trio, load_surrogate, save_surrogate, surrogate_loss
from .metrics import evaluate, latent_metrics

GRAD_CLIP = 1.0


class SurrogateTrainer(Trainer):
    """The surrogate's part of the loop: a batch of trio windows, the frozen trio encoder's posterior
    as the target, the surrogate's loss; validation by that loss on the validation split; the best
    checkpoint only (surrogate.pt, with `meta`).

    Args:
      surrogate: the encoder trained.
      trio: the frozen trio model (its encoder gives the targets).
      train_tokens, val_tokens: (N, steps, tracks) trio windows; val_tokens None or empty: no
        validation (the checkpoint is the latest).
      out_dir: the run directory.
      loss: "mse" | "nll" (export_onnx.surrogate.encoder.surrogate_loss).
      augment: transpose each window by a random number of semitones (the trio recipe's range).
      batch_size: examples per step.
      seed: seeds the data order and the transpositions.
      learning_rate: the schedule (its `initial` starts the optimizer).
      meta: what every checkpoint records besides the step and the validation.
      **loop: the Trainer's max_steps, log_every, validate_every, checkpoint_every, progress.
    """

    def __init__(self, surrogate: SurrogateEncoder, trio: MusicVAE, train_tokens, val_tokens, out_dir, *, loss: str,
                 augment: bool, batch_size: int, seed: int, learning_rate: ExponentialDecay, meta: dict, **loop):
        super().__init__(surrogate, torch.optim.Adam(surrogate.parameters(), lr=learning_rate.initial), out_dir,
                         learning_rate=learning_rate, grad_clip=GRAD_CLIP, best_file=CHECKPOINT,
                         desc=f"surrogate[{loss}]", **loop)
        self.trio, self.loss, self.augment, self.meta = trio, loss, augment, meta
        self.train_tokens, self.val_tokens = train_tokens, val_tokens
        self.has_validation = val_tokens is not None and len(val_tokens) > 0
        self.stream = BatchStream(len(train_tokens), batch_size, seed + 3)
        self.aug_rng = np.random.default_rng([seed, 7])

    def train_step(self):
        batch = self.train_tokens[self.stream.next()].astype(np.int64)
        if self.augment:
            batch = augment_batch(batch, self.trio.config, self.aug_rng)
        with torch.no_grad():
            mu, sigma = self.trio.encoder(self.trio.one_hot(torch.as_tensor(batch)))
        mu_hat, sigma_hat = self.model(self.model.one_hot(batch))
        return surrogate_loss(self.loss, mu_hat, sigma_hat, mu, sigma), {}

    def validate(self):
        return latent_metrics(self.model, self.trio, self.val_tokens, self.loss)

    def save(self, path):
        save_surrogate(self.model, path, step=self.step, validation=self.last_validation, **self.meta)


def split_tokens(data_dir, split: str) -> np.ndarray | None:
    """A split's tokens (export_onnx.dataset.load_split), None when the split is not there."""
    from ..dataset import load_split
    try:
        return np.asarray(load_split(data_dir, split)["tokens"])
    except (FileNotFoundError, OSError):
        return None


def frozen_trio(trio_run, trio_model: MusicVAE | None = None) -> tuple[MusicVAE, dict]:
    """(the trio model of `trio_run` (run dir or checkpoint) or `trio_model`, in eval mode with
    gradients off; its checkpoint info).

    Raises:
      ValueError: the model is not a trio.
    """
    if trio_model is None:
        trio, info = load_checkpoint(trio_run)
    else:
        trio, info = trio_model.eval(), {"config": trio_model.config.name, "step": 0}
    for p in trio.parameters():
        p.requires_grad_(False)
    if trio.config.kind != "trio":
        raise ValueError(f"{trio_run}: a {trio.config.kind} model, not a trio")
    return trio, info


def surrogate_data(data_dir, config: ModelConfig, val_examples: int):
    """(train, validation (the first val_examples) or None, test or None) tokens of a trio dataset.

    Raises:
      FileNotFoundError: no train split.
      ValueError: the windows do not fit the config.
    """
    train_tokens = split_tokens(data_dir, "train")
    if train_tokens is None:
        raise FileNotFoundError(f"{data_dir}/train.npz not found; build it with `python -m export_onnx dataset`")
    if train_tokens.shape[1:] != (config.num_steps, len(config.tracks)):
        raise ValueError(f"{data_dir}: tokens {train_tokens.shape[1:]} do not fit {config.name}")
    val_tokens = split_tokens(data_dir, "validation")
    test_tokens = split_tokens(data_dir, "test")
    if val_tokens is not None:
        val_tokens = val_tokens[:val_examples]
    return train_tokens, val_tokens, test_tokens


def train_surrogate(trio_run, data_dir, out_dir, loss: str = "mse", max_steps: int = 2000,
                    batch_size: int | None = None, learning_rate: float = 1e-3, min_learning_rate: float = 1e-5,
                    decay_rate: float = 0.999, seed: int = 0, threads: int | None = None, init: str = "trio",
                    model_size: ModelSize | None = None, augment: bool = True, validate_every: int = 200,
                    val_examples: int = 512, test_examples: int = 1024, decode_examples: int = 128,
                    log_every: int = 50, progress: bool = True, trio_model: MusicVAE | None = None) -> dict:
    """Trains a surrogate encoder against the frozen trio model of `trio_run` (`train-surrogate`).

    Args:
      trio_run: the trio run directory (best.pt / latest.pt) or checkpoint.
      data_dir: the trio dataset directory (train; validation and test when there).
      out_dir: the run directory: surrogate.pt, log.jsonl, metrics.json.
      loss: "mse" | "nll".
      max_steps: training steps.
      batch_size: default: the trio recipe's (at most the training split's size).
      learning_rate, min_learning_rate, decay_rate: the exponential decay of the learning rate.
      seed: seeds the weights (init "random"), the data order and the transpositions.
      threads: torch CPU threads (default min(2, cores)).
      init: "trio" (the trio encoder's weights on the lead rows) | "random".
      model_size: default: the trio model's.
      augment: random transpositions.
      validate_every: steps between validations (each may write the best checkpoint).
      val_examples, test_examples: windows used of the validation and test splits.
      decode_examples: held-out windows decoded from each z (0: none).
      log_every: steps between "train" lines of log.jsonl.
      progress: a tqdm bar.
      trio_model: the trio model itself, instead of loading `trio_run` (tests).

    Returns:
      The summary written to OUT/metrics.json: the run's settings, "steps", "best_step",
      "copied_from_trio", "wall_time", "validation" (the last), "held_out_split" and "held_out"
      (export_onnx.surrogate.metrics.evaluate of the best checkpoint).

    Raises:
      ValueError: an unknown loss or init, a model that is not a trio, data that does not fit it.
      FileNotFoundError: no training split.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    torch.set_num_threads(threads or max(1, min(2, os.cpu_count() or 1)))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trio, trio_info = frozen_trio(trio_run, trio_model)
    config = trio.config
    train_tokens, val_tokens, test_tokens = surrogate_data(data_dir, config, val_examples)
    batch_size = min(batch_size or config.recipe.batch_size, len(train_tokens))

    torch.manual_seed(seed)
    if init not in ("trio", "random"):
        raise ValueError(f"init must be trio or random, got {init!r}")
    surrogate = SurrogateEncoder(config, model_size or trio.size)
    copied = init_from_trio(surrogate, trio) if init == "trio" else 0
    meta = {"loss": loss, "init": init, "trio_run": str(trio_run), "trio_config": config.name,
            "trio_step": trio_info.get("step"), "data": str(data_dir), "seed": seed, "batch_size": batch_size}
    trainer = SurrogateTrainer(surrogate, trio, train_tokens, val_tokens, out_dir, loss=loss, augment=augment,
                               batch_size=batch_size, seed=seed, meta=meta,
                               learning_rate=ExponentialDecay(learning_rate, min_learning_rate, decay_rate),
                               max_steps=max_steps, log_every=log_every, validate_every=validate_every,
                               checkpoint_every=validate_every, progress=progress)
    trainer.start_log()
    trainer.run()

    held_out, held_name = (test_tokens, "test") if test_tokens is not None and len(test_tokens) else (val_tokens, "validation")
    metrics = {"held_out_split": held_name, **meta, "steps": trainer.step, "best_step": trainer.best_step,
               "copied_from_trio": copied, "wall_time": trainer.wall, "validation": trainer.last_validation}
    best, _ = load_surrogate(out_dir / CHECKPOINT)
    if held_out is not None and len(held_out):
        metrics["held_out"] = evaluate(best, trio, held_out[:test_examples], decode_examples)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    save_surrogate(best, out_dir / CHECKPOINT, step=trainer.best_step, validation=metrics["validation"],
                   metrics=metrics.get("held_out"), held_out_split=held_name, **meta)
    return metrics
