"""The training loop that the MusicVAE (export_onnx.train) and the surrogate encoder
(export_onnx.surrogate.training) share.

`Trainer.run()` repeats, until `max_steps` or the deadline (`max_minutes`):

    lr = learning_rate(step)                       # set on every parameter group
    loss, stats = train_step()                     # the subclass: one batch, forward, loss
    backward; clip the global gradient norm; optimizer step; step += 1; wall += the step's seconds
    every log_every steps (and the last):          a "train" line in OUT/log.jsonl: the means of
                                                   loss, stats and grad_norm since the last line
    every validate_every steps (and the last):     validate(); a "validation" line; the best file
                                                   when score() improved
    every checkpoint_every steps (and the last):   the latest file; without validation the best file
                                                   too (best = latest)

and after the loop writes the latest file if the run stopped between two checkpoints. A subclass
says only what is its own: one step's loss (`train_step`), validation (`validate`, `score`), what a
checkpoint holds (`save`), the log line's fields (`log_fields`, `postfix`) and, for a run over
several processes, how they agree (`agree_to_stop`, `before_saving`: collectives every process
calls at the same step).

`wall` counts the seconds spent in steps only (not validation or checkpoints): the run-sized
schedules and `steps_per_sec` read it, and it is kept in checkpoints so a resumed run goes on
counting.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

LOG_FILE = "log.jsonl"


@dataclass(frozen=True)
class ExponentialDecay:
    """Magenta's MusicVAE learning rate: (initial - minimum) * rate^step + minimum."""
    initial: float
    minimum: float
    rate: float

    def __call__(self, step: int) -> float:
        return (self.initial - self.minimum) * self.rate ** step + self.minimum


class BatchStream:
    """Shuffled epochs from a seeded NumPy generator; state = (rng state, epoch, permutation, position)."""

    def __init__(self, n: int, batch_size: int, seed: int):
        if n < batch_size:
            raise ValueError(f"the training split has {n} examples, fewer than one batch ({batch_size})")
        self.n, self.batch_size = n, batch_size
        self.rng = np.random.default_rng(seed)
        self.epoch, self.pos = 0, 0
        self.perm = self.rng.permutation(n)

    def next(self) -> np.ndarray:
        if self.pos + self.batch_size > self.n:
            self.epoch += 1
            self.perm, self.pos = self.rng.permutation(self.n), 0
        idx = self.perm[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "epoch": self.epoch, "pos": self.pos, "perm": self.perm.copy()}

    def load(self, s: dict) -> None:
        self.rng.bit_generator.state = s["rng"]
        self.epoch, self.pos, self.perm = s["epoch"], s["pos"], np.asarray(s["perm"])


def atomic_save(obj, path: Path) -> None:
    """torch.save to a temporary file, then rename: a run killed while writing leaves the previous
    checkpoint whole."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def to_host(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A step's numbers on the CPU with one device-to-host copy (a copy per value would wait on the
    device once each). Returns float32 tensors of the same shapes."""
    flat = torch.cat([v.detach().reshape(-1).float() for v in values.values()]).cpu()
    out, at = {}, 0
    for name, v in values.items():
        out[name] = flat[at:at + v.numel()].reshape(v.shape)
        at += v.numel()
    return out


class Trainer:
    """The shared training loop; subclass it and implement `train_step` and `save` (and `validate`
    when `has_validation`).

    Use: construct it; when resuming, restore the attributes below (and the optimizer) from a
    checkpoint; `start_log(resume)`; `run()`.

    Args:
      model: the torch module trained; its parameters are the ones clipped, and it is put in train
        mode for the steps and in eval mode for validation.
      optimizer: over the model's parameters; its learning rate is set before every step.
      out_dir: the run directory (log.jsonl and the checkpoint files).
      learning_rate: step (steps done so far) -> the learning rate of the next step.
      grad_clip: the maximum global norm of the gradients.
      max_steps: the run ends when `step` reaches it.
      log_every, validate_every, checkpoint_every: every how many steps a "train" line is logged,
        the model validated (when `has_validation`) and the latest checkpoint written; the last
        step does all three.
      best_file: the file name, in out_dir, of the best checkpoint.
      latest_file: the file name of the latest checkpoint; None when the run keeps only the best.
      max_minutes: a deadline in wall-clock minutes from `run()` (None: none); the run stops before
        the first step that would start after it, and writes its latest checkpoint.
      progress: show a tqdm bar (main process only).
      desc: the bar's label.
      is_main: whether this process writes the log and the checkpoints (rank 0 of several).

    Attributes a subclass reads or restores (on resume): `step` (steps done), `wall` (seconds spent
    in steps), `best` (the best validation score so far), `best_step`, `last_validation` (the last
    validate() result, None before), `lr` (the learning rate of the last step), `timed_out`.
    """

    has_validation = False   # a subclass with a validation split sets it True

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, out_dir, *,
                 learning_rate: Callable[[int], float], grad_clip: float, max_steps: int, log_every: int,
                 validate_every: int, checkpoint_every: int, best_file: str, latest_file: str | None = None,
                 max_minutes: float | None = None, progress: bool = True, desc: str = "train",
                 is_main: bool = True):
        self.model, self.optimizer = model, optimizer
        self.out_dir = Path(out_dir)
        self.learning_rate, self.grad_clip = learning_rate, grad_clip
        self.max_steps, self.max_minutes = max_steps, max_minutes
        self.log_every, self.validate_every, self.checkpoint_every = log_every, validate_every, checkpoint_every
        self.best_path = self.out_dir / best_file
        self.latest_path = None if latest_file is None else self.out_dir / latest_file
        self.log_path = self.out_dir / LOG_FILE
        self.progress, self.desc, self.is_main = progress, desc, is_main
        self.step, self.wall, self.best, self.best_step = 0, 0.0, float("inf"), 0
        self.last_validation: dict | None = None
        self.lr: float | None = None
        self.timed_out = False

    # ------------------------------------------------------------------------------------ subclass
    def train_step(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Computes the loss of the next batch (the optimizer's work is the loop's).

        Returns:
          loss: the scalar to minimise, with its graph.
          stats: more tensors to average into the "train" log line (any shape, any device); the
            loop adds `loss` and `grad_norm`.
        """
        raise NotImplementedError

    def save(self, path: Path) -> None:
        """Writes a checkpoint of the current state to `path` (the best or the latest file)."""
        raise NotImplementedError

    def validate(self) -> dict:
        """Evaluates the model (in eval mode, without gradients) on the validation split.

        Returns:
          The numbers logged in the "validation" line and kept as `last_validation`.
        """
        raise NotImplementedError

    def score(self, validation: dict) -> float:
        """The number the best checkpoint minimises, from a validate() result (default: its loss)."""
        return validation["loss"]

    def log_fields(self, means: dict[str, torch.Tensor]) -> dict:
        """The model's fields of a "train" line, from the means since the last line (CPU tensors
        by name: loss, grad_norm and the train_step stats). The loop adds step, split, lr,
        steps_per_sec, wall_time and cpu_time. Default: every mean, as a float or a list."""
        return {name: v.item() if v.numel() == 1 else v.tolist() for name, v in means.items()}

    def postfix(self, entry: dict) -> dict:
        """What the progress bar shows after a "train" line (default: the loss)."""
        return {"loss": f"{entry['loss']:.4f}"}

    def agree_to_stop(self, stop: bool) -> bool:
        """Whether to stop before the next step, given this process's view of the deadline. Runs
        over several processes make it a collective so that they all stop at the same step."""
        return stop

    def before_saving(self) -> None:
        """Called by every process at each step that validates or checkpoints, and after the loop,
        before the main process writes anything: the place for collectives a checkpoint needs."""

    # ------------------------------------------------------------------------------------ the loop
    def start_log(self, resume: bool = False) -> None:
        """Starts OUT/log.jsonl (main process): empty for a new run; on resume, the lines up to
        `step` are kept (those written after the resumed checkpoint will be written again)."""
        if not self.is_main:
            return
        if resume and self.log_path.exists():
            keep = [l for l in self.log_path.read_text().splitlines()
                    if l.strip() and json.loads(l).get("step", 0) <= self.step]
            self.log_path.write_text("".join(k + "\n" for k in keep))
        elif not resume:
            self.log_path.write_text("")

    def log(self, entry: dict) -> None:
        """Appends one JSON line to OUT/log.jsonl (main process only)."""
        if self.is_main:
            with open(self.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def run(self) -> dict:
        """Trains from `step` to `max_steps` or the deadline.

        Returns:
          {"step", "wall_time", "best", "validation" (the last validate() result or None),
           "timed_out" (stopped by max_minutes)}.
        """
        bar = self._progress_bar()
        self.model.train()
        deadline = None if self.max_minutes is None else time.time() + 60.0 * self.max_minutes
        sums, n_log, t_log = {}, 0, time.time()
        while self.step < self.max_steps:
            if self.agree_to_stop(deadline is not None and time.time() >= deadline):
                self.timed_out = True
                break
            t0 = time.time()
            values = self._one_step()
            self.wall += time.time() - t0
            for name, v in to_host(values).items():
                sums[name] = sums[name] + v if name in sums else v
            n_log += 1
            if bar is not None:
                bar.update(1)
            if self._due(self.log_every):
                now = time.time()
                entry = {"step": self.step, "split": "train",
                         **self.log_fields({name: s / n_log for name, s in sums.items()}),
                         "lr": self.lr, "steps_per_sec": n_log / max(now - t_log, 1e-9), "wall_time": self.wall,
                         # this process's CPU seconds: on a shared machine wall time says little about cost
                         "cpu_time": time.process_time()}
                self.log(entry)
                if bar is not None:
                    bar.set_postfix(**self.postfix(entry))
                sums, n_log, t_log = {}, 0, now
            self._validate_and_save()
        if bar is not None:
            bar.close()
        self.before_saving()
        stopped_between = self.timed_out and self.step % self.checkpoint_every
        if self.is_main and self.latest_path is not None and (not self.latest_path.exists() or stopped_between):
            self.save(self.latest_path)
        return {"step": self.step, "wall_time": self.wall, "best": self.best, "validation": self.last_validation,
                "timed_out": self.timed_out}

    def _one_step(self) -> dict[str, torch.Tensor]:
        self.lr = self.learning_rate(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        loss, stats = self.train_step()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.step += 1
        return {"loss": loss, **stats, "grad_norm": grad_norm}

    def _due(self, every: int) -> bool:
        return self.step % every == 0 or self.step == self.max_steps

    def _validate_and_save(self) -> None:
        validating = self.has_validation and self._due(self.validate_every)
        saving = self._due(self.checkpoint_every)
        if validating or saving:
            self.before_saving()
        if validating and self.is_main:
            self.model.eval()
            with torch.no_grad():
                self.last_validation = self.validate()
            self.model.train()
            self.log({"step": self.step, "split": "validation", **self.last_validation})
            if self.score(self.last_validation) < self.best:
                self.best, self.best_step = self.score(self.last_validation), self.step
                self.save(self.best_path)
        if saving and self.is_main:
            if self.latest_path is not None:
                self.save(self.latest_path)
            if not self.has_validation:   # nothing to choose by: the best is the latest
                self.best_step = self.step
                self.save(self.best_path)

    def _progress_bar(self):
        if not (self.is_main and self.progress):
            return None
        from tqdm import tqdm
        return tqdm(total=self.max_steps, initial=self.step, desc=self.desc, dynamic_ncols=True,
                    mininterval=1.0 if sys.stderr.isatty() else 30.0)
