"""Train a MusicVAE: `python -m export_onnx train --config mel_2bar --data data/mel_2bar --out runs/mel_2bar`.

Recipe (MusicVAE paper / Magenta, see `configs.TrainRecipe`):
- Adam, lr = (lr0 - lr_min) * decay^step + lr_min; gradients clipped to a global norm;
- loss = mean(reconstruction CE summed over steps and tracks) + beta * mean(max(KL - free_bits ln2, 0)),
  beta = (1 - beta_rate^step) * max_beta;
- scheduled sampling, inverse sigmoid: p(teacher) = k / (k + exp(step / k)), p(sample) = 1 - that;
- pitch augmentation: every example moved by a random number of semitones in [lo, hi] (kept as is
  when a note would leave the range).

The step loop, logging, validation, checkpoints and the deadline are export_onnx.trainer.Trainer's;
`VaeTrainer` below adds what is the VAE's own, and `train()` prepares the data and the model.

Run directory (`--out`): `latest.pt` and `best.pt` (written atomically), `log.jsonl`, `config.json`.
`--resume` restarts from `latest.pt` exactly: model, optimizer, step, RNG states and the position in
the data order, so N steps + resume N steps == 2N steps straight. A weights-only checkpoint
(`slim-checkpoint`, what comes back from a GPU lease) resumes its weights and step with a fresh
optimizer and data order.
`--max-minutes` stops at a wall-clock budget (a checkpoint is written), for leases with a time limit.
`--batch-size` is the global batch; under torchrun (WORLD_SIZE > 1) every process takes its slice of
it and the model is wrapped in DistributedDataParallel. The checkpoint holds every process's random
streams (gathered to rank 0), so a resume with the same number of processes is exact as well (with
another number the data order continues and the per-process streams start afresh); every process
reads `latest.pt`, so on several machines OUT is shared storage. `--max-minutes` stops all processes
at the same step. A dataset built with `--shard-size` is memory-mapped: a process reads only the rows
of its slice. `record_batches` (or LATENT_BRIDGE_RECORD_BATCHES=1) writes each process's example
indices per step, and its parameters' digest at the end, to OUT/rank{r}_indices.jsonl (tests).
`best.pt` = the checkpoint with the lowest validation score (teacher forced, z drawn from the
posterior with a fixed seed), `selection_score`: for the run-sized schedule the objective at max_beta
(reconstruction + max_beta * KL over the free bits), since the run is planned to end at max_beta and a
checkpoint from before the warm-up, with its large KL, reconstructs best but samples worst; for the
paper's schedule the reconstruction loss (its beta grows for ~10^5 steps, so objective values from
different steps are not comparable).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

# OpenMP threads that spin while waiting collapse when the cores are shared (a step can take 100x
# longer); passive waiting costs little when the machine is idle. Only effective before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from .configs import ModelConfig, TrainRecipe, get_config  # noqa: E402
from .model import MusicVAE, checkpoint_file, kl_divergence, reconstruction_loss, step_accuracy, vae_loss  # noqa: E402
from .trainer import BatchStream, ExponentialDecay, Trainer, atomic_save  # noqa: E402


# --------------------------------------------------------------------------------------------- schedules
def learning_rate_at(step: int, recipe: TrainRecipe) -> float:
    return ExponentialDecay(recipe.learning_rate, recipe.min_learning_rate, recipe.decay_rate)(step)


class RunPlan:
    """How far through its planned length a run is, for the run-sized schedules (recipe.schedule
    "run"): progress = max(steps done / planned steps, training seconds / planned seconds), in [0, 1].
    The plan is fixed when a run starts and kept in its checkpoints, so a resumed run continues the
    same schedule."""

    def __init__(self, steps: int | None = None, minutes: float | None = None):
        self.steps, self.minutes = steps, minutes

    def progress(self, step: int, wall: float) -> float:
        if not self.steps and not self.minutes:
            return 1.0   # nothing planned: the schedules' end values
        p = 0.0
        if self.steps:
            p = max(p, step / self.steps)
        if self.minutes:
            p = max(p, wall / (60.0 * self.minutes))
        return min(1.0, p)

    def to_dict(self) -> dict:
        return {"steps": self.steps, "minutes": self.minutes}


def _ramp(progress: float, until: float) -> float:
    return 1.0 if until <= 0 else min(1.0, progress / until)


def beta_at(step: int, recipe: TrainRecipe, progress: float | None = None) -> float:
    """KL weight: the paper's (1 - rate^step) * max_beta, or linear to max_beta by recipe.beta_warmup
    of the run (`progress` in [0, 1]) for schedule "run"."""
    if recipe.schedule == "run" and progress is not None:
        return recipe.max_beta * _ramp(progress, recipe.beta_warmup)
    return (1.0 - recipe.beta_rate ** step) * recipe.max_beta


def teacher_forcing_probability(step: int, recipe: TrainRecipe) -> float:
    """Inverse sigmoid schedule: k / (k + exp(step / k)); 1.0 when scheduled sampling is off."""
    if recipe.sampling_schedule in ("", "constant", "none"):
        return 1.0
    if recipe.sampling_schedule != "inverse_sigmoid":
        raise ValueError(f"unknown sampling schedule {recipe.sampling_schedule!r}")
    k = recipe.sampling_rate
    x = step / k
    if x > 700:  # exp overflow: the teacher is long gone
        return 0.0
    return k / (k + math.exp(x))


def sampling_probability(step: int, recipe: TrainRecipe, progress: float | None = None) -> float:
    """Scheduled sampling probability: the paper's inverse sigmoid, or (schedule "run") linear to
    recipe.final_sampling_probability by recipe.sampling_ramp of the run; 0 when sampling is off."""
    if recipe.sampling_schedule in ("", "constant", "none"):
        return 0.0
    if recipe.schedule == "run" and progress is not None:
        return recipe.final_sampling_probability * _ramp(progress, recipe.sampling_ramp)
    return 1.0 - teacher_forcing_probability(step, recipe)


# --------------------------------------------------------------------------------------------- data
def _dataset_api():
    """`load_split` / `augment` from export_onnx.dataset; a self-contained equivalent if that module
    is not importable (tests, or the dataset side not merged yet)."""
    try:
        from .dataset import augment, load_split  # noqa: F401
        return load_split, augment
    except ImportError:
        return _load_split, _augment


def _load_split(data_dir, split: str, mmap: bool = False) -> dict:
    with np.load(Path(data_dir) / f"{split}.npz") as f:
        return {k: f[k] for k in f.files}


def _augment(tokens: np.ndarray, codec, rng: np.random.Generator, semitones: tuple[int, int] = (-5, 6)) -> np.ndarray:
    out = np.array(tokens, copy=True)
    lo, hi = semitones
    for i in range(out.shape[0]):
        s = int(rng.integers(lo, hi + 1))
        if s:
            moved = codec.transpose(out[i].astype(np.int64), s)
            if moved is not None:
                out[i] = moved
    return out


def augment_batch(tokens: np.ndarray, config: ModelConfig, rng: np.random.Generator) -> np.ndarray:
    """Shift every example by its own random number of semitones in [lo, hi] (both included)."""
    lo, hi = config.recipe.augment_semitones
    if lo == 0 and hi == 0:
        return tokens
    _, augment = _dataset_api()
    if augment is _augment:
        return _augment(tokens, config.codec, rng, (lo, hi))
    return np.asarray(augment(tokens, config.codec, rng, lo, hi + 1))  # dataset.augment: high excluded


# --------------------------------------------------------------------------------------------- helpers
def random_streams(seed: int, rank: int, n: int, batch_size: int, offset: int = 0):
    """(torch generator for z noise and scheduled sampling, NumPy generator for pitch augmentation,
    data order); `offset` gives a weights-only resume at that step its own streams."""
    gen = torch.Generator().manual_seed(seed + 1 + 1000 * rank + offset)
    aug_rng = np.random.default_rng([seed, 2, rank] + ([offset] if offset else []))
    return gen, aug_rng, BatchStream(n, batch_size, seed + 3 + offset)


def process_rng_state(gen: torch.Generator, aug_rng: np.random.Generator, device) -> dict:
    """One process's random streams (the data order is the same in every process, saved once)."""
    return {"torch_gen": gen.get_state(), "torch_global": torch.get_rng_state(), "aug": aug_rng.bit_generator.state,
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def set_process_rng_state(state: dict, gen: torch.Generator, aug_rng: np.random.Generator, device) -> None:
    gen.set_state(state["torch_gen"].cpu())   # a checkpoint loaded to a GPU has its states there too
    torch.set_rng_state(state["torch_global"].cpu())
    aug_rng.bit_generator.state = state["aug"]
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def parameter_digest(model: torch.nn.Module) -> str:
    """sha256 of every parameter and buffer, in state_dict order (processes hold identical weights)."""
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def batch_losses(model: MusicVAE, logits, mu, sigma, tokens) -> dict:
    r = reconstruction_loss(logits, tokens, model.num_classes)  # (B, tracks)
    kl = kl_divergence(mu, sigma)
    return {"r_tracks": r, "r_loss": r.sum(-1), "kl": kl,
            "acc": step_accuracy(logits.detach(), tokens, model.num_classes)}


@torch.no_grad()
def validate(model: MusicVAE, tokens: np.ndarray, recipe: TrainRecipe, device, batch_size: int, seed: int = 1234) -> dict:
    """Teacher-forced validation: z sampled from the posterior with a fixed generator."""
    was = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    tot = {"r_loss": 0.0, "kl": 0.0, "kl_cost": 0.0}
    acc = torch.zeros(len(model.num_classes))
    n, mus = 0, []
    for a in range(0, len(tokens), batch_size):
        t = torch.as_tensor(tokens[a:a + batch_size].astype(np.int64), device=device)
        logits, mu, sigma = model(t, 0.0, g)
        mus.append(mu.detach().cpu())
        L = batch_losses(model, logits, mu, sigma, t)
        b = t.shape[0]
        tot["r_loss"] += L["r_loss"].sum().item()
        tot["kl"] += L["kl"].sum().item()
        tot["kl_cost"] += torch.clamp(L["kl"] - recipe.free_bits * math.log(2), min=0).sum().item()
        acc += L["acc"].cpu() * b
        n += b
    model.train(was)
    out = {k: v / n for k, v in tot.items()}
    out["objective"] = out["r_loss"] + recipe.max_beta * out["kl_cost"]
    out["kl_bits"] = out["kl"] / math.log(2)
    out["acc"] = (acc / n).tolist()
    out["n"] = n
    # how much the posterior mean moves between examples: ~0 means the encoder has collapsed (z says
    # nothing about the input, the decoder ignores it), which the losses alone do not show
    out["z_spread"] = float(torch.cat(mus).std(0).mean()) if n > 1 else None
    picked = recon_windows(len(tokens))
    out["recon_acc"] = reconstruction_accuracy(model, tokens[picked], device, batch_size)
    out["recon_n"] = len(picked)
    return out


# validation windows decoded free-running each validation: the audit's kind of reconstruction
# statistic (argmax from the posterior mean), whose curve the card shows; teacher-forced accuracy
# overstates it
RECON_EXAMPLES = 256


def recon_windows(n: int) -> np.ndarray:
    """Indices of the windows `recon_acc` decodes: RECON_EXAMPLES spread evenly over the n windows
    (consecutive windows are one song's, overlapping: the first 256 of drums_2bar's validation
    split are 12 of its 67 songs), the same ones every validation."""
    return np.unique(np.linspace(0, n - 1, min(n, RECON_EXAMPLES)).round().astype(np.int64)) if n else np.zeros(0, np.int64)


@torch.no_grad()
def reconstruction_accuracy(model: MusicVAE, tokens: np.ndarray, device, batch_size: int) -> float | None:
    """Token accuracy of argmax decodes from the posterior mean (no teacher forcing), mean over
    tracks; None for no tokens."""
    if len(tokens) == 0:
        return None
    was = model.training
    model.eval()
    hits = total = 0
    for a in range(0, len(tokens), batch_size):
        t = torch.as_tensor(tokens[a:a + batch_size].astype(np.int64), device=device)
        hits += (model.reconstruct(t) == t).sum().item()
        total += t.numel()
    model.train(was)
    return hits / total


def selection_score(val: dict, recipe: TrainRecipe) -> float:
    """What best.pt minimises (see the module docstring)."""
    return val["objective"] if recipe.schedule == "run" else val["r_loss"]


def default_threads() -> int:
    """min(2, cores); 1 when the machine is already busier than its cores (shared CPU)."""
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0] >= cores
    except OSError:
        busy = False
    return 1 if busy else max(1, min(2, cores))


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


# --------------------------------------------------------------------------------------------- processes
class Processes:
    """This process's place in a torchrun job (world 1, rank 0 without torchrun) and its device."""

    def __init__(self, world: int, rank: int, device: torch.device):
        self.world, self.rank, self.device = world, rank, device
        self.is_main = rank == 0


def start_processes(threads: int | None, device: str | None) -> Processes:
    """Threads, the device (cuda:LOCAL_RANK when there is CUDA) and, under torchrun, the process group."""
    world, rank, local_rank = _dist_info()
    torch.set_num_threads(threads or default_threads())
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return Processes(world, rank, device)


# --------------------------------------------------------------------------------------------- the run's parts
def run_config(config_name: str, batch_size: int | None, recipe_changes: dict | None) -> ModelConfig:
    """The named config with this run's recipe changes (`--recipe`, `--batch-size`)."""
    config = get_config(config_name)
    changes = dict(recipe_changes or {})
    if batch_size:
        changes["batch_size"] = batch_size
    return replace(config, recipe=replace(config.recipe, **changes)) if changes else config


def training_data(data_dir, config: ModelConfig, val_examples: int):
    """(train tokens, validation tokens or None). A sharded set (`dataset --shard-size`) stays on
    disk, memory-mapped: a process reads its rows only."""
    load_split, _ = _dataset_api()
    train_tokens = load_split(data_dir, "train", mmap=True)["tokens"]
    try:
        val_tokens = np.asarray(load_split(data_dir, "validation", mmap=True)["tokens"][:val_examples])
    except (FileNotFoundError, OSError):
        val_tokens = None
    if train_tokens.shape[1:] != (config.num_steps, len(config.tracks)):
        raise ValueError(f"{data_dir}: tokens {train_tokens.shape[1:]} do not fit {config.name} "
                         f"({config.num_steps} steps, {len(config.tracks)} tracks)")
    return train_tokens, val_tokens


def initial_model(config: ModelConfig, size, init_from, device) -> tuple[MusicVAE, list[dict]]:
    """(the model to start from, the training history before this run): new weights of `size` (a
    name or a ModelSize), or a package's (`init_from`; its size, its runs so far)."""
    if init_from is None:
        return MusicVAE(config, size).to(device), []
    from .from_package import read_package_model, training_history
    model, manifest = read_package_model(init_from)
    if manifest["config"] != config.name:
        raise ValueError(f"{init_from} is a {manifest['config']} package, not {config.name}")
    training = manifest.get("training") or {}
    prior = training.get("history")
    history = list(prior) if prior else [{"run": training.get("run", "shipped"), **training_history(manifest)}]
    return model.to(device), history


# --------------------------------------------------------------------------------------------- training
class VaeTrainer(Trainer):
    """The MusicVAE on the shared loop (export_onnx.trainer).

    What is the VAE's own: the batch (this process's slice of the global batch, pitch-augmented),
    β and the scheduled sampling probability of each step (from the recipe and the run plan), bf16
    autocast, the loss (export_onnx.model.vae_loss), validation with `selection_score`, and
    checkpoints that resume exactly: optimizer, data order and every process's random streams.
    Under torchrun the model runs wrapped in DistributedDataParallel, the processes agree on the
    deadline and on the minutes-based schedules before each step, and gather their random streams
    to rank 0 before it writes a checkpoint.

    Args:
      model: the MusicVAE, on `procs.device`.
      config: the run's config (its recipe with this run's changes).
      train_tokens, val_tokens: (N, steps, tracks) token arrays; val_tokens None or empty: no
        validation (best.pt follows latest.pt).
      out_dir: the run directory.
      procs: this process's place in the job.
      seed: seeds the data order and the random streams.
      plan: the run plan of the run-sized schedules.
      history: the runs before this one (a package's), carried on in the checkpoints.
      init_from: the package the weights came from (recorded), or None.
      **loop: the Trainer's max_steps, log_every, validate_every, checkpoint_every, max_minutes,
        progress.
    """

    def __init__(self, model: MusicVAE, config: ModelConfig, train_tokens, val_tokens, out_dir, procs: Processes,
                 *, seed: int, plan: RunPlan, history: list[dict], init_from=None, **loop):
        recipe = config.recipe
        model.decoder.sampling_method = recipe.sampling_method
        model.decoder.input_dropout = recipe.input_dropout
        super().__init__(model, torch.optim.Adam(model.parameters(), lr=recipe.learning_rate), out_dir,
                         learning_rate=partial(learning_rate_at, recipe=recipe), grad_clip=recipe.grad_clip,
                         best_file="best.pt", latest_file="latest.pt", desc=config.name, is_main=procs.is_main,
                         **loop)
        self.config, self.recipe, self.procs = config, recipe, procs
        self.train_tokens, self.val_tokens = train_tokens, val_tokens
        self.has_validation = val_tokens is not None and len(val_tokens) > 0
        self.local_batch = recipe.batch_size // procs.world
        self.seed, self.plan, self.history, self.init_from = seed, plan, history, init_from
        self.gen, self.aug_rng, self.stream = self._streams()
        self.ranks_rng = None   # every process's random streams, gathered at the steps that may write a checkpoint
        self.record = None      # debug: this process's example indices per step (off by default)
        self.net = model        # what the steps run: the model, or its DistributedDataParallel wrapper
        self.beta = self.p_sample = self.run_progress = 0.0

    def _streams(self, offset: int = 0):
        return random_streams(self.seed, self.procs.rank, len(self.train_tokens), self.recipe.batch_size, offset)

    # ------------------------------------------------------------------------------------ resume
    def resume(self, path: Path) -> None:
        """Continues from a checkpoint of this config: weights, step, best score, wall time, plan
        and history; the optimizer and the random streams too where it has them (exact), else (a
        weights-only checkpoint) a fresh optimizer and a new data order.

        Raises:
          ValueError: the checkpoint is of another config.
        """
        ck = torch.load(path, map_location=self.procs.device, weights_only=False)
        if ck["config"] != self.config.name:
            raise ValueError(f"{path} is a {ck['config']} run, not {self.config.name}")
        self.model.load_state_dict(ck["model"])
        self.step, self.best, self.wall = ck["step"], ck["best"], ck.get("wall_time", 0.0)
        self.history = ck.get("history_before", self.history)
        if ck.get("plan"):
            self.plan = RunPlan(**ck["plan"])
        if ck.get("optimizer") is not None:
            self.optimizer.load_state_dict(ck["optimizer"])
        if ck.get("rng") is not None:
            self._restore_streams(ck, path)
        else:  # weights only: a new data order, so the resumed run does not replay the first epochs
            self.gen, self.aug_rng, self.stream = self._streams(offset=self.step)

    def _restore_streams(self, ck: dict, path: Path) -> None:
        rng, world, rank = ck["rng"], self.procs.world, self.procs.rank
        self.stream.load(rng["stream"])   # the data order: one for all processes
        ranks = rng.get("ranks")          # every process's streams (torchrun runs); else rank 0's at top level
        mine = ranks[rank] if ranks and len(ranks) == world else rng if not ranks and world == 1 else None
        if mine is not None:
            set_process_rng_state(mine, self.gen, self.aug_rng, self.procs.device)
            return
        # written by another number of processes: the data order goes on, new per-process streams
        self.gen, self.aug_rng, _ = self._streams(offset=self.step)
        if rank == 0:
            print(f"resume: {path} was written by {len(ranks) if ranks else ck.get('world_size', '?')} "
                  f"process(es), this run has {world}: same data order, new per-process random streams "
                  "(not bit-exact)", file=sys.stderr)

    def start_record(self, on: bool, resume: bool) -> None:
        """Records this process's example indices per step to OUT/rank{r}_indices.jsonl (tests);
        on resume the lines up to `step` are kept."""
        if not on:
            return
        path = self.out_dir / f"rank{self.procs.rank}_indices.jsonl"
        lines = path.read_text().splitlines() if resume and path.exists() else []
        keep = [l for l in map(json.loads, filter(str.strip, lines)) if l["step"] <= self.step and not l.get("final")]
        path.write_text("".join(json.dumps(l) + "\n" for l in keep))
        self.record = open(path, "a", buffering=1)

    # ------------------------------------------------------------------------------------ the Trainer's hooks
    def train_step(self):
        rank, b = self.procs.rank, self.local_batch
        idx = self.stream.next()[rank * b:(rank + 1) * b]
        if self.record is not None:
            self.record.write(json.dumps({"step": self.step + 1, "rank": rank, "indices": idx.tolist()}) + "\n")
        batch = augment_batch(self.train_tokens[idx].astype(np.int64), self.config, self.aug_rng)
        tokens = torch.as_tensor(batch, device=self.procs.device)
        self.run_progress = self.plan.progress(self.step, self.wall)
        self.beta = beta_at(self.step, self.recipe, self.run_progress)
        self.p_sample = sampling_probability(self.step, self.recipe, self.run_progress)
        with torch.autocast(self.procs.device.type, dtype=torch.bfloat16, enabled=self.recipe.precision == "bf16"):
            logits, mu, sigma = self.net(tokens, self.p_sample, self.gen)
        L = batch_losses(self.model, logits.float(), mu.float(), sigma.float(), tokens)
        loss = vae_loss(L["r_loss"], L["kl"], self.beta, self.recipe.free_bits)
        return loss, {"r_loss": L["r_loss"].mean(), "kl": L["kl"].mean(), "acc": L["acc"]}

    def log_fields(self, means):
        return {"loss": means["loss"].item(), "r_loss": means["r_loss"].item(),
                "kl_bits": means["kl"].item() / math.log(2), "grad_norm": means["grad_norm"].item(),
                "acc": means["acc"].tolist(), "beta": self.beta, "p_sample": self.p_sample,
                "progress": self.run_progress, "epoch": self.stream.epoch}

    def postfix(self, entry):
        return {"loss": f"{entry['loss']:.2f}", "acc": f"{entry['acc'][0]:.3f}", "kl": f"{entry['kl_bits']:.1f}"}

    def validate(self):
        return {"free_bits": self.recipe.free_bits,
                **validate(self.model, self.val_tokens, self.recipe, self.procs.device, max(self.local_batch, 64))}

    def score(self, validation):
        return selection_score(validation, self.recipe)

    def agree_to_stop(self, stop):
        if self.procs.world > 1 and (self.max_minutes is not None or self.plan.minutes):
            # every process stops at the same step and follows the same minutes-based schedule
            agreed = torch.tensor([float(stop), self.wall], dtype=torch.float64, device=self.procs.device)
            torch.distributed.all_reduce(agreed, op=torch.distributed.ReduceOp.MAX)
            stop, self.wall = bool(agreed[0].item()), float(agreed[1].item())
        return stop

    def before_saving(self):
        if self.procs.world > 1:   # a collective: every process calls it at the same step
            self.ranks_rng = [None] * self.procs.world
            torch.distributed.all_gather_object(self.ranks_rng, process_rng_state(self.gen, self.aug_rng,
                                                                                 self.procs.device))

    def save(self, path):
        out = self.out_dir
        atomic_save({
            "format": "latent-bridge-checkpoint", "config": self.config.name, "size_name": self.model.size_name,
            "size": asdict(self.model.size), "recipe": asdict(self.recipe), "step": self.step, "best": self.best,
            "wall_time": self.wall, "seed": self.seed, "model": self.model.state_dict(), "plan": self.plan.to_dict(),
            "init_from": None if self.init_from is None else str(self.init_from), "history_before": self.history,
            "history": self.history + [{"run": out.name, "steps": self.step,
                                        "examples": self.step * self.recipe.batch_size, "wall_time": self.wall}],
            "optimizer": self.optimizer.state_dict(), "world_size": self.procs.world,
            "rng": {**process_rng_state(self.gen, self.aug_rng, self.procs.device), "stream": self.stream.state(),
                    "ranks": self.ranks_rng},
        }, path)

    def run(self) -> dict:
        if self.procs.world > 1:
            device = self.procs.device
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        summary = super().run()
        if self.record is not None:
            self.record.write(json.dumps({"step": self.step, "rank": self.procs.rank, "final": True,
                                          "params_sha256": parameter_digest(self.model)}) + "\n")
            self.record.close()
        if self.procs.world > 1:
            torch.distributed.barrier()
        return summary


def train(config_name: str, data_dir, out_dir, size: str = "small", max_steps: int | None = None,
          batch_size: int | None = None, resume: bool = False, seed: int = 0, threads: int | None = None,
          device: str | None = None, val_examples: int = 2048, log_every: int = 50,
          validate_every: int | None = None, checkpoint_every: int | None = None,
          model_size=None, recipe_changes: dict | None = None, progress: bool = True,
          max_minutes: float | None = None, init_from=None, plan_steps: int | None = None,
          plan_minutes: float | None = None, record_batches: bool | None = None) -> dict:
    """Trains a MusicVAE into the run directory `out_dir` (`python -m export_onnx train`).

    Args:
      config_name: a name of export_onnx.configs.CONFIGS.
      data_dir: the dataset directory (train and, optionally, validation split).
      out_dir: the run directory: latest.pt, best.pt, log.jsonl, config.json.
      size: "small" | "full"; `model_size` (a ModelSize) overrides it (tests use tiny ones), and so
        does the package's size with `init_from`.
      max_steps: the step to stop at (default 50,000), counted from the start of the run.
      batch_size: the global batch (default: the recipe's); under torchrun each process takes its
        slice.
      resume: continue from OUT/latest.pt (exactly, when it is a full checkpoint).
      seed: seeds the weights, the data order and the random streams.
      threads: torch CPU threads (default: default_threads()).
      device: "cpu" | "cuda[:i]" (default: cuda:LOCAL_RANK when there is CUDA).
      val_examples: the validation windows used (the first ones of the split).
      log_every, validate_every, checkpoint_every: in steps (the latter two default to the
        recipe's).
      recipe_changes: TrainRecipe fields to override for this run (recorded in the checkpoints).
      progress: a tqdm bar.
      max_minutes: stop at this wall-clock budget, with a checkpoint.
      init_from: a model package directory: a new run from the package's weights, its training
        history carried on in the checkpoints.
      plan_steps, plan_minutes: size the run-sized schedules when the run is done in chunks
        (default: max_steps / max_minutes); a resumed run keeps the plan of its checkpoint.
      record_batches: write each process's example indices per step (default:
        $LATENT_BRIDGE_RECORD_BATCHES).

    Returns:
      {"step", "wall_time", "best" (the best selection score), "validation" (the last validation,
       None without a validation split or off the main process), "timed_out"}.

    Raises:
      ValueError: the batch does not divide among the processes, the data does not fit the
        config, or the checkpoint / package is of another config.
    """
    procs = start_processes(threads, device)
    config = run_config(config_name, batch_size, recipe_changes)
    recipe = config.recipe
    if recipe.batch_size % procs.world:
        raise ValueError(f"batch size {recipe.batch_size} is not divisible by WORLD_SIZE {procs.world}")
    max_steps = max_steps if max_steps is not None else 50_000
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_tokens, val_tokens = training_data(data_dir, config, val_examples)

    torch.manual_seed(seed)
    model, history = initial_model(config, model_size if model_size is not None else size, init_from, procs.device)
    trainer = VaeTrainer(model, config, train_tokens, val_tokens, out_dir, procs, seed=seed, history=history,
                         init_from=init_from, plan=RunPlan(plan_steps or max_steps, plan_minutes or max_minutes),
                         max_steps=max_steps, log_every=log_every,
                         validate_every=validate_every or recipe.validate_every,
                         checkpoint_every=checkpoint_every or recipe.checkpoint_every,
                         max_minutes=max_minutes, progress=progress)
    latest = out_dir / "latest.pt"
    if resume and latest.exists():
        trainer.resume(latest)
    if procs.is_main:
        (out_dir / "config.json").write_text(json.dumps(
            {"config": config.to_dict(size) if model_size is None else {**asdict(config), "size": asdict(model.size)},
             "data": str(data_dir), "seed": seed, "world_size": procs.world, "device": str(procs.device),
             "threads": torch.get_num_threads()}, indent=1, default=list))
    trainer.start_log(resume)
    if record_batches is None:
        record_batches = os.environ.get("LATENT_BRIDGE_RECORD_BATCHES", "0") != "0"
    trainer.start_record(record_batches, resume)
    return trainer.run()


# --------------------------------------------------------------------------------------------- CLI
def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a MusicVAE (CPU, one GPU, or torchrun for several)")
    p.add_argument("--config", required=True, help="config name (export_onnx.configs.CONFIGS)")
    p.add_argument("--data", required=True, help="dataset directory with train/validation .npz")
    p.add_argument("--out", required=True, help="run directory (checkpoints, log.jsonl)")
    p.add_argument("--size", default="small", choices=["small", "full"])
    p.add_argument("--max-steps", type=int, default=50_000)
    p.add_argument("--batch-size", type=int, default=None, help="global batch (default: the recipe's)")
    p.add_argument("--resume", action="store_true", help="continue exactly from OUT/latest.pt")
    p.add_argument("--init-from", default=None, metavar="PACKAGE",
                   help="start from a model package's weights (e.g. bridge/models/mel_2bar): a new run "
                        "whose schedules start over, with the package's training history carried on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default min(2, cores), 1 on a busy machine)")
    p.add_argument("--device", default=None, help="cpu | cuda[:i] (default: cuda when available)")
    p.add_argument("--val-examples", type=int, default=2048)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--validate-every", type=int, default=None)
    p.add_argument("--checkpoint-every", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop after this much wall time (checkpoint written), e.g. inside a GPU lease")
    p.add_argument("--plan-steps", type=int, default=None,
                   help="size the run-sized schedules for this many steps (a run done in chunks)")
    p.add_argument("--plan-minutes", type=float, default=None,
                   help="size the run-sized schedules for this many minutes of training")
    p.add_argument("--recipe", action="append", default=[], metavar="KEY=VALUE",
                   help="override a TrainRecipe field for this run (recorded in the checkpoint), e.g. sampling_rate=500")
    p.set_defaults(func=main)

    s = subparsers.add_parser("slim-checkpoint", help="keep a checkpoint's weights only (fp16 with --half): "
                              "small enough to carry; evaluate/export/--resume accept it")
    s.add_argument("src", help="checkpoint file or run directory (its best.pt)")
    s.add_argument("dst")
    s.add_argument("--half", action="store_true", help="store float tensors as float16")
    s.set_defaults(func=slim_main)


def parse_recipe_changes(items: list[str]) -> dict:
    fields = {f: type(v) for f, v in asdict(TrainRecipe()).items()}
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise SystemExit(f"--recipe {item!r}: expected KEY=VALUE with KEY one of {', '.join(fields)}")
        kind = fields[key]
        out[key] = tuple(int(x) for x in value.split(",")) if kind is tuple else kind(value)
    return out


def slim_checkpoint(src, dst, half: bool = False) -> dict:
    src = checkpoint_file(src)
    ck = torch.load(src, map_location="cpu", weights_only=False)
    ck = {k: v for k, v in ck.items() if k not in ("optimizer", "rng")}
    if half:
        ck["model"] = {k: v.half() if v.is_floating_point() else v for k, v in ck["model"].items()}
    atomic_save(ck, Path(dst))
    return {"src": str(src), "dst": str(dst), "step": ck["step"], "bytes": Path(dst).stat().st_size}


def slim_main(args: argparse.Namespace) -> int:
    print(json.dumps(slim_checkpoint(args.src, args.dst, args.half)))
    return 0


def main(args: argparse.Namespace) -> int:
    summary = train(args.config, args.data, args.out, size=args.size, max_steps=args.max_steps,
                    batch_size=args.batch_size, resume=args.resume, seed=args.seed, threads=args.threads,
                    device=args.device, val_examples=args.val_examples, log_every=args.log_every,
                    validate_every=args.validate_every, checkpoint_every=args.checkpoint_every,
                    max_minutes=args.max_minutes, recipe_changes=parse_recipe_changes(args.recipe),
                    init_from=args.init_from, plan_steps=args.plan_steps, plan_minutes=args.plan_minutes)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in summary.items()}, default=str))
    return 0
