"""Accompaniment in latent space: a melody-only SURROGATE ENCODER for a trio MusicVAE.

Method ("Generating Musical Accompaniment in Latent Space"): the trio model's encoder maps a whole
trio (lead, bass, drums) to a posterior N(mu, sigma). A second encoder of the same BiLSTM family
(hierarchical for 16 bars) sees only the lead track and learns to predict that latent. For a new
melody: predict z, decode a full trio with the trio decoder, and put the original melody back in
place of the decoded lead (bridge/runtime/accompany.py does that at runtime).

    python -m export_onnx train-surrogate --trio runs/trio_16bar --data data/trio_16bar \
        --out runs/trio_accomp [--loss mse|nll] [--max-steps N] [--package bridge/models/trio_16bar]
    python -m export_onnx add-surrogate runs/trio_accomp --package bridge/models/trio_16bar

Losses (targets come from the frozen trio encoder on the same, pitch-augmented, batch):
- `mse`: mean squared error between the surrogate's mu and the trio posterior mean;
- `nll`: expected Gaussian negative log-likelihood of z ~ N(mu, sigma) under the surrogate's
  N(mu_hat, sigma_hat), in closed form: log sigma_hat + ((mu - mu_hat)^2 + sigma^2) / (2 sigma_hat^2).
  Dimensions the trio posterior pins down (small sigma) then weigh more than ones it leaves at the prior.
With `mse` the surrogate's sigma head is not trained (only mu is used at runtime).

Weights start from the trio encoder (`--init trio`): every parameter of the same shape is copied,
and the first LSTM's kernels keep the rows of the lead one-hot and of the recurrent state (the
bass and drum rows are dropped). `--init random` starts from scratch.

Run directory: `surrogate.pt` (best on the validation split), `log.jsonl`, `metrics.json` (held-out
evaluation on the test split: latent MSE, baselines, and step accuracy of the tracks decoded from
the predicted z versus from the true z).

Package: `add_surrogate_to_package(run_dir, package_dir)` writes `surrogate_encoder.onnx`
(inputs `inputs (B, steps, lead_classes)` one-hot of the lead track; outputs `mu`, `sigma` (B, z)),
checks it against torch (<= 1e-4), checks that the package's encoder is the trio model the
surrogate was trained against, and adds the graph (role `surrogate_encoder`), its sha256 and a
`surrogate` section to model.json.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bridge.runtime.package import OPTIONAL_GRAPH_IO, SURROGATE_ROLE, parse_manifest, record_files, write_manifest

from .configs import ModelConfig, ModelSize
from .model import BidirectionalLstmEncoder, HierarchicalEncoder, MusicVAE, load_checkpoint, one_hot
from .model_card import SURROGATE_HEADING as CARD_HEADING, fmt, with_section

CHECKPOINT = "surrogate.pt"
FORMAT = "latent-bridge-surrogate"
ROLE = SURROGATE_ROLE
GRAPH_FILE = f"{ROLE}.onnx"
OPSET = 17
TOLERANCE = 1e-4
LOSSES = ("mse", "nll")


# --------------------------------------------------------------------------------------------- model
class SurrogateEncoder(nn.Module):
    """The trio encoder's architecture over one track's one-hot: inputs (B, steps, classes) -> (mu, sigma)."""

    def __init__(self, config: ModelConfig, size: ModelSize, track: int = 0):
        super().__init__()
        if config.kind != "trio":
            raise ValueError(f"a surrogate encoder needs a trio config, got {config.name} ({config.kind})")
        self.config, self.size, self.track = config, size, track
        self.num_classes = [config.codec.num_classes[track]]
        self.input_size = self.num_classes[0]
        self.num_steps = config.num_steps
        self.z_size = size.z_size
        if config.hierarchical:
            self.encoder = HierarchicalEncoder(self.input_size, size.bar_enc_units or size.enc_units,
                                               size.enc_units, size.z_size, config.bars)
        else:
            self.encoder = BidirectionalLstmEncoder(self.input_size, size.enc_units, size.z_size)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(inputs)

    def one_hot(self, tokens) -> torch.Tensor:
        """(B, steps, tracks) trio tokens (or (B, steps) lead tokens) -> (B, steps, lead classes)."""
        tokens = torch.as_tensor(np.asarray(tokens, dtype=np.int64))
        if tokens.ndim == 3:
            tokens = tokens[..., self.track:self.track + 1]
        else:
            tokens = tokens[..., None]
        return one_hot(tokens, self.num_classes)


def init_from_trio(surrogate: SurrogateEncoder, trio: MusicVAE) -> int:
    """Copy the trio encoder's weights into the surrogate; returns the number of tensors copied.

    Same-shape tensors are copied as they are; an LSTM kernel over [one-hot of all tracks, h] keeps
    the rows of the surrogate's track and of h."""
    src = trio.encoder.state_dict()
    dst = surrogate.encoder.state_dict()
    a = sum(trio.num_classes[:surrogate.track])
    b = a + trio.num_classes[surrogate.track]
    copied = 0
    with torch.no_grad():
        for name, t in dst.items():
            s = src.get(name)
            if s is None:
                continue
            if s.shape == t.shape:
                t.copy_(s)
                copied += 1
            elif s.ndim == 2 and s.shape[1] == t.shape[1] and s.shape[0] - trio.input_size == t.shape[0] - surrogate.input_size:
                t.copy_(torch.cat([s[a:b], s[trio.input_size:]], dim=0))
                copied += 1
    surrogate.encoder.load_state_dict(dst)
    return copied


def surrogate_loss(kind: str, mu_hat, sigma_hat, mu, sigma) -> torch.Tensor:
    """Mean over batch and z of the chosen loss (see the module docstring)."""
    if kind == "mse":
        return (mu_hat - mu).pow(2).mean()
    if kind == "nll":
        s2 = sigma_hat.clamp_min(1e-4).pow(2)
        nll = 0.5 * torch.log(s2) + ((mu - mu_hat).pow(2) + sigma.pow(2)) / (2.0 * s2) + 0.5 * math.log(2 * math.pi)
        return nll.mean()
    raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")


# --------------------------------------------------------------------------------------------- checkpoints
def save_surrogate(surrogate: SurrogateEncoder, path, **info) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    obj = {"format": FORMAT, "config": surrogate.config.name, "size": asdict(surrogate.size),
           "track": surrogate.track, "model": surrogate.state_dict(), **info}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_surrogate(path) -> tuple[SurrogateEncoder, dict]:
    """A surrogate checkpoint (file, or a run directory holding surrogate.pt) -> (model in eval mode, info)."""
    from .configs import get_config
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a surrogate encoder checkpoint")
    model = SurrogateEncoder(get_config(ckpt["config"]), ModelSize(**ckpt["size"]), ckpt.get("track", 0))
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, {k: v for k, v in ckpt.items() if k != "model"}


# --------------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def predict(surrogate: SurrogateEncoder, tokens: np.ndarray, batch: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    mus, sigmas = [], []
    for a in range(0, len(tokens), batch):
        m, s = surrogate(surrogate.one_hot(tokens[a:a + batch]))
        mus.append(m)
        sigmas.append(s)
    return torch.cat(mus), torch.cat(sigmas)


@torch.no_grad()
def trio_posterior(trio: MusicVAE, tokens: np.ndarray, batch: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    mus, sigmas = [], []
    for a in range(0, len(tokens), batch):
        m, s = trio.encode(torch.as_tensor(np.asarray(tokens[a:a + batch], dtype=np.int64)))
        mus.append(m)
        sigmas.append(s)
    return torch.cat(mus), torch.cat(sigmas)


@torch.no_grad()
def latent_metrics(surrogate: SurrogateEncoder, trio: MusicVAE, tokens: np.ndarray, loss: str) -> dict:
    mu, sigma = trio_posterior(trio, tokens)
    mu_hat, sigma_hat = predict(surrogate, tokens)
    return {"latent_mse": float((mu_hat - mu).pow(2).mean()),
            "loss": float(surrogate_loss(loss, mu_hat, sigma_hat, mu, sigma)),
            "n": int(len(tokens))}


def _accuracy(pred: torch.Tensor, truth: torch.Tensor, names: list[str]) -> dict:
    """Per track: step accuracy, and accuracy on the steps where the truth has an event (token != 0)."""
    out = {}
    for k, name in enumerate(names):
        p, t = pred[..., k], truth[..., k]
        ev = t != 0
        out[name] = {"acc": float((p == t).float().mean()),
                     "event_acc": float((p[ev] == t[ev]).float().mean()) if ev.any() else None}
    return out


@torch.no_grad()
def evaluate(surrogate: SurrogateEncoder, trio: MusicVAE, tokens: np.ndarray, decode_examples: int = 128,
             batch: int = 64) -> dict:
    """Held-out evaluation: latent MSE (and baselines), and the tracks decoded (argmax) from the
    predicted z vs from the true z, scored against the true tokens."""
    tokens = np.asarray(tokens, dtype=np.int64)
    mu, sigma = trio_posterior(trio, tokens)
    mu_hat, sigma_hat = predict(surrogate, tokens)
    # baseline: the trio encoder given the melody alone (bass and drums silent: token 0)
    alone = tokens.copy()
    alone[..., 1:] = 0
    mu_alone, _ = trio_posterior(trio, alone)
    res = {
        "n": int(len(tokens)),
        "latent_mse": float((mu_hat - mu).pow(2).mean()),
        "nll": float(surrogate_loss("nll", mu_hat, sigma_hat, mu, sigma)),
        "baseline_latent_mse": {"zero": float(mu.pow(2).mean()),
                                "held_out_mean": float((mu - mu.mean(0)).pow(2).mean()),   # the best constant (optimistic)
                                "trio_encoder_melody_only": float((mu_alone - mu).pow(2).mean())},
        "cosine": float(F.cosine_similarity(mu_hat, mu, dim=-1).mean()),
    }
    names = [t.get("name", f"track{k}") for k, t in enumerate(trio.config.tracks)]
    n_dec = min(decode_examples, len(tokens))
    if n_dec:
        truth = torch.as_tensor(tokens[:n_dec])
        dec = {"true_z": [], "predicted_z": [], "melody_only_z": []}
        for a in range(0, n_dec, batch):
            for key, z in (("true_z", mu), ("predicted_z", mu_hat), ("melody_only_z", mu_alone)):
                dec[key].append(trio.decode_argmax(z[a:min(a + batch, n_dec)]))
        res["decode"] = {"n": n_dec, **{k: _accuracy(torch.cat(v), truth, names) for k, v in dec.items()}}
        true_dec, pred_dec = torch.cat(dec["true_z"]), torch.cat(dec["predicted_z"])
        res["decode"]["agreement_pred_vs_true_z"] = {n: float((pred_dec[..., k] == true_dec[..., k]).float().mean())
                                                     for k, n in enumerate(names)}
    return res


# --------------------------------------------------------------------------------------------- training
def _split(data_dir, split: str):
    from .dataset import load_split
    try:
        return np.asarray(load_split(data_dir, split)["tokens"])
    except (FileNotFoundError, OSError):
        return None


def train_surrogate(trio_run, data_dir, out_dir, loss: str = "mse", max_steps: int = 2000,
                    batch_size: int | None = None, learning_rate: float = 1e-3, min_learning_rate: float = 1e-5,
                    decay_rate: float = 0.999, seed: int = 0, threads: int | None = None, init: str = "trio",
                    model_size: ModelSize | None = None, augment: bool = True, validate_every: int = 200,
                    val_examples: int = 512, test_examples: int = 1024, decode_examples: int = 128,
                    log_every: int = 50, progress: bool = True, trio_model: MusicVAE | None = None) -> dict:
    """Train a surrogate encoder against the frozen trio model of `trio_run` (run dir or checkpoint);
    returns the summary written to OUT/metrics.json. `trio_model` (tests) replaces loading `trio_run`."""
    from .train import BatchStream, augment_batch
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    torch.set_num_threads(threads or max(1, min(2, os.cpu_count() or 1)))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if trio_model is None:
        trio, trio_info = load_checkpoint(trio_run)
    else:
        trio, trio_info = trio_model.eval(), {"config": trio_model.config.name, "step": 0}
    for p in trio.parameters():
        p.requires_grad_(False)
    config = trio.config
    if config.kind != "trio":
        raise ValueError(f"{trio_run}: a {config.kind} model, not a trio")

    train_tokens = _split(data_dir, "train")
    if train_tokens is None:
        raise FileNotFoundError(f"{data_dir}/train.npz not found; build it with `python -m export_onnx dataset`")
    if train_tokens.shape[1:] != (config.num_steps, len(config.tracks)):
        raise ValueError(f"{data_dir}: tokens {train_tokens.shape[1:]} do not fit {config.name}")
    val_tokens = _split(data_dir, "validation")
    test_tokens = _split(data_dir, "test")
    if val_tokens is not None:
        val_tokens = val_tokens[:val_examples]
    batch_size = batch_size or config.recipe.batch_size
    batch_size = min(batch_size, len(train_tokens))

    torch.manual_seed(seed)
    if init not in ("trio", "random"):
        raise ValueError(f"init must be trio or random, got {init!r}")
    surrogate = SurrogateEncoder(config, model_size or trio.size)
    copied = init_from_trio(surrogate, trio) if init == "trio" else 0
    optimizer = torch.optim.Adam(surrogate.parameters(), lr=learning_rate)
    stream = BatchStream(len(train_tokens), batch_size, seed + 3)
    aug_rng = np.random.default_rng([seed, 7])
    log_path = out_dir / "log.jsonl"
    log_path.write_text("")
    meta = {"loss": loss, "init": init, "trio_run": str(trio_run), "trio_config": config.name,
            "trio_step": trio_info.get("step"), "data": str(data_dir), "seed": seed, "batch_size": batch_size}

    def log(entry):
        with open(log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def checkpoint(step, val):
        save_surrogate(surrogate, out_dir / CHECKPOINT, step=step, validation=val, **meta)

    best, best_step, step, wall, last_val = float("inf"), 0, 0, 0.0, None
    run_loss, n_run = 0.0, 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=max_steps, desc=f"surrogate[{loss}]", dynamic_ncols=True,
                   mininterval=1.0 if sys.stderr.isatty() else 30.0)
    surrogate.train()
    while step < max_steps:
        t0 = time.time()
        batch = train_tokens[stream.next()].astype(np.int64)
        if augment:
            batch = augment_batch(batch, config, aug_rng)
        with torch.no_grad():
            mu, sigma = trio.encoder(trio.one_hot(torch.as_tensor(batch)))
        lr = (learning_rate - min_learning_rate) * decay_rate ** step + min_learning_rate
        for g in optimizer.param_groups:
            g["lr"] = lr
        mu_hat, sigma_hat = surrogate(surrogate.one_hot(batch))
        L = surrogate_loss(loss, mu_hat, sigma_hat, mu, sigma)
        optimizer.zero_grad(set_to_none=True)
        L.backward()
        torch.nn.utils.clip_grad_norm_(surrogate.parameters(), 1.0)
        optimizer.step()
        step += 1
        wall += time.time() - t0
        run_loss += float(L.detach())
        n_run += 1
        if bar is not None:
            bar.update(1)
        if step % log_every == 0 or step == max_steps:
            log({"step": step, "split": "train", "loss": run_loss / n_run, "lr": lr, "wall_time": wall})
            if bar is not None:
                bar.set_postfix(loss=f"{run_loss / n_run:.4f}")
            run_loss, n_run = 0.0, 0
        if step % validate_every == 0 or step == max_steps:
            if val_tokens is not None and len(val_tokens):
                surrogate.eval()
                last_val = latent_metrics(surrogate, trio, val_tokens, loss)
                surrogate.train()
                log({"step": step, "split": "validation", **last_val})
                score = last_val["loss"]
            else:
                score = -step  # no validation split: keep the latest
            if score < best:
                best, best_step = score, step
                checkpoint(step, last_val)
    if bar is not None:
        bar.close()

    surrogate, _ = load_surrogate(out_dir / CHECKPOINT)
    held_out = test_tokens if test_tokens is not None and len(test_tokens) else val_tokens
    held_name = "test" if test_tokens is not None and len(test_tokens) else "validation"
    metrics = {"held_out_split": held_name, **meta, "steps": step, "best_step": best_step,
               "copied_from_trio": copied, "wall_time": wall,
               "validation": last_val}
    if held_out is not None and len(held_out):
        metrics["held_out"] = evaluate(surrogate, trio, held_out[:test_examples], decode_examples)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    save_surrogate(surrogate, out_dir / CHECKPOINT, step=best_step, validation=metrics["validation"],
                   metrics=metrics.get("held_out"), held_out_split=held_name, **meta)
    return metrics


# --------------------------------------------------------------------------------------------- export
class _Graph(nn.Module):
    def __init__(self, surrogate):
        super().__init__()
        self.surrogate = surrogate

    def forward(self, inputs):
        return self.surrogate(inputs)


def _example(surrogate: SurrogateEncoder, batch: int, rng: np.random.Generator) -> np.ndarray:
    toks = rng.integers(0, surrogate.input_size, size=(batch, surrogate.num_steps))
    return np.eye(surrogate.input_size, dtype=np.float32)[toks]


def export_surrogate_graph(surrogate: SurrogateEncoder, path, verify: bool = True, weights: str = "fp32") -> dict:
    """Write the ONNX graph; returns its manifest entry (file, inputs, outputs, track, parity).
    `weights="fp16"` (the package's storage) rounds the weights to float16 and stores them so."""
    import onnx
    import onnxruntime as ort
    from .export import round_weights_fp16, set_io_shapes, to_fp16_storage
    path = Path(path)
    surrogate = surrogate.cpu().eval()
    if weights == "fp16":
        round_weights_fp16(surrogate)
    (in_name,), out_names = OPTIONAL_GRAPH_IO[ROLE]
    inputs = {in_name: ["B", surrogate.num_steps, surrogate.input_size]}
    outputs = {name: ["B", surrogate.z_size] for name in out_names}
    example = torch.from_numpy(_example(surrogate, 2, np.random.default_rng(0)))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(_Graph(surrogate), (example,), str(path), input_names=list(inputs),
                          output_names=list(outputs), dynamic_axes={k: {0: "B"} for k in (*inputs, *outputs)},
                          opset_version=OPSET, do_constant_folding=True, dynamo=False)
    set_io_shapes(path, inputs, outputs)
    if weights == "fp16":
        to_fp16_storage(path)
    onnx.checker.check_model(str(path), full_check=True)
    entry = {"file": path.name, "inputs": inputs, "outputs": outputs, "track": surrogate.track, "weights": weights}
    if verify:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.log_severity_level = 3
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(1)
        diff = 0.0
        for b in (1, 3):
            x = _example(surrogate, b, rng)
            got = sess.run(["mu", "sigma"], {"inputs": x})
            with torch.no_grad():
                want = surrogate(torch.from_numpy(x))
            for g, w in zip(got, want):
                diff = max(diff, float(np.abs(g - w.numpy()).max()))
        if not diff <= TOLERANCE:
            raise RuntimeError(f"{path.name}: onnxruntime differs from torch by {diff:.3g} > {TOLERANCE}")
        entry["parity_max_abs_diff"] = diff
    return entry


def _check_same_trio(surrogate_info: dict, trio_run, package_dir: Path, info: dict, examples: int = 8) -> float | None:
    """The package's encoder must be the trio model the surrogate was trained against: run both on
    the same random trios; returns the max difference of mu (None when the trio run is not at hand)."""
    import onnxruntime as ort
    if not trio_run:
        return None
    run = Path(trio_run)
    if run.is_dir():
        run = next((run / f for f in ("best.pt", "latest.pt") if (run / f).is_file()), None)
    if run is None or not run.is_file():
        return None
    trio, _ = load_checkpoint(run)
    rng = np.random.default_rng(2)
    toks = np.stack([rng.integers(0, n, size=(examples, trio.num_steps)) for n in trio.num_classes], -1)
    sess = ort.InferenceSession(str(package_dir / info["graphs"]["encoder"]["file"]), providers=["CPUExecutionProvider"])
    got = sess.run(["mu"], {"inputs": trio.one_hot(torch.as_tensor(toks)).numpy()})[0]
    with torch.no_grad():
        want = trio.encode(torch.as_tensor(toks))[0].numpy()
    return float(np.abs(got - want).max())


def add_surrogate_to_package(run_dir, package_dir, trio_run=None, check_trio: bool = True) -> dict:
    """Add the surrogate of `run_dir` (or a surrogate.pt) to the trio package at package_dir as
    `surrogate_encoder.onnx`; updates model.json (graphs, files, sha256, `surrogate`). Returns model.json."""
    package_dir = Path(package_dir)
    info = parse_manifest(package_dir)
    surrogate, sinfo = load_surrogate(run_dir)
    if info.get("kind") != "trio":
        raise ValueError(f"{package_dir}: a {info.get('kind')} package; the surrogate belongs in a trio package")
    want = {"z_size": surrogate.z_size, "num_steps": surrogate.num_steps}
    for k, v in want.items():
        if info.get(k) != v:
            raise ValueError(f"{package_dir}: {k} is {info.get(k)}, the surrogate has {v}")
    if info["tracks"][surrogate.track].get("num_classes") != surrogate.input_size:
        raise ValueError(f"{package_dir}: track {surrogate.track} has {info['tracks'][surrogate.track].get('num_classes')} "
                         f"classes, the surrogate {surrogate.input_size}")
    diff = None
    if check_trio:
        diff = _check_same_trio(sinfo, trio_run or sinfo.get("trio_run"), package_dir, info)
        tol = 5e-2 if info.get("weights") == "fp16" else 1e-3
        if diff is not None and not diff <= tol:
            raise ValueError(f"{package_dir}: its encoder is not the trio model the surrogate was trained "
                             f"against ({sinfo.get('trio_run')}): mu differs by {diff:.3g}")
    tmp = Path(tempfile.mkdtemp(prefix=".surrogate.", dir=package_dir))
    try:
        entry = export_surrogate_graph(surrogate, tmp / GRAPH_FILE, weights=info.get("weights", "fp32"))
        parity = entry.pop("parity_max_abs_diff", None)
        os.replace(tmp / GRAPH_FILE, package_dir / GRAPH_FILE)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    info["graphs"][ROLE] = entry
    record_files(info, package_dir, [GRAPH_FILE])
    held = sinfo.get("metrics") or {}
    info["surrogate"] = {
        "track": surrogate.track, "loss": sinfo.get("loss"), "init": sinfo.get("init"),
        "steps": sinfo.get("step"), "trio_step": sinfo.get("trio_step"),
        "parity_max_abs_diff": parity, "trio_encoder_max_abs_diff": diff,
        "metrics": {k: held[k] for k in ("n", "latent_mse", "baseline_latent_mse", "decode") if k in held},
    }
    card = package_dir / "MODEL_CARD.md"
    if card.is_file():
        card.write_text(surrogate_card_section(card.read_text(), info["surrogate"], sinfo))
        record_files(info, package_dir, [card.name])
    write_manifest(package_dir, info)
    return info


def surrogate_card_section(card: str, summary: dict, sinfo: dict) -> str:
    """`card` with its accompaniment section (held-out numbers of the surrogate) written or replaced."""
    m = summary.get("metrics") or {}
    base = m.get("baseline_latent_mse") or {}
    dec = m.get("decode") or {}
    lines = [CARD_HEADING, "",
             f"`surrogate_encoder.onnx` predicts z from the lead track alone (loss `{summary.get('loss')}`, "
             f"init `{summary.get('init')}`, best validation at step {summary.get('steps')}, against the trio "
             f"checkpoint of step {summary.get('trio_step')}). Held-out songs ({sinfo.get('held_out_split', 'test')} "
             f"split, {m.get('n', '?')} windows):", "",
             "| latent MSE to the trio posterior mean | value |", "|---|---|",
             f"| surrogate | {fmt(m.get('latent_mse'), 4)} |",
             f"| trio encoder fed the melody alone (bass, drums silent) | {fmt(base.get('trio_encoder_melody_only'), 4)} |",
             f"| best constant (the held-out mean) | {fmt(base.get('held_out_mean'), 4)} |",
             f"| zero (the prior mean) | {fmt(base.get('zero'), 4)} |", ""]
    if dec:
        names = list(dec.get("true_z", {}))
        lines += [f"Tracks decoded (argmax) from each z, step accuracy against the true tracks ({dec.get('n')} windows):", "",
                  "| z | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for key, label in (("true_z", "true (trio encoder)"), ("predicted_z", "surrogate (melody only)"),
                           ("melody_only_z", "trio encoder, melody alone")):
            if key in dec:
                lines.append(f"| {label} | " + " | ".join(fmt(dec[key][n]["acc"]) for n in names) + " |")
        lines.append("")
    return with_section(card, "\n".join(lines))


# --------------------------------------------------------------------------------------------- CLI
def add_parser(subparsers) -> None:
    """Registers `train-surrogate` and `add-surrogate` with the export_onnx dispatcher."""
    p = subparsers.add_parser("train-surrogate", help="train a melody-only encoder for a trio model (accompaniment)",
                              description=__doc__.split("\n\n")[1])
    p.add_argument("--trio", required=True, help="trio run directory (best.pt / latest.pt) or checkpoint")
    p.add_argument("--data", required=True, help="trio dataset directory (train/validation/test .npz)")
    p.add_argument("--out", required=True, help="run directory to write (surrogate.pt, metrics.json)")
    p.add_argument("--loss", default="mse", choices=LOSSES)
    p.add_argument("--max-steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=None, help="default: the trio recipe's")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--init", default="trio", choices=["trio", "random"],
                   help="start from the trio encoder's weights (lead rows) or from scratch")
    p.add_argument("--no-augment", action="store_true", help="no random transposition")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--validate-every", type=int, default=200)
    p.add_argument("--test-examples", type=int, default=1024)
    p.add_argument("--decode-examples", type=int, default=128)
    p.add_argument("--package", default=None, help="trio package to add surrogate_encoder.onnx to when done")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_main_train)

    q = subparsers.add_parser("add-surrogate", help="add a trained surrogate encoder to a trio model package")
    q.add_argument("run", help="surrogate run directory (surrogate.pt) or checkpoint")
    q.add_argument("--package", required=True, help="trio package directory, e.g. bridge/models/trio_16bar")
    q.add_argument("--trio", default=None, help="trio run to check the package against (default: the one recorded)")
    q.set_defaults(func=_main_add)


def _main_train(args) -> int:
    metrics = train_surrogate(args.trio, args.data, args.out, loss=args.loss, max_steps=args.max_steps,
                              batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
                              threads=args.threads, init=args.init, augment=not args.no_augment,
                              validate_every=args.validate_every, test_examples=args.test_examples,
                              decode_examples=args.decode_examples, progress=not args.no_progress)
    if args.package:
        add_surrogate_to_package(args.out, args.package, trio_run=args.trio)
        metrics["package"] = str(args.package)
    print(json.dumps(metrics, indent=1, default=str))
    return 0


def _main_add(args) -> int:
    info = add_surrogate_to_package(args.run, args.package, trio_run=args.trio)
    print(json.dumps({"package": str(args.package), "graph": GRAPH_FILE, **info["surrogate"]}, default=str))
    return 0


# --------------------------------------------------------------------------------------------- tiny (tests)
def save_trio_checkpoint(model: MusicVAE, path, step: int = 0) -> Path:
    """A minimal trainer-style checkpoint of `model` (what load_checkpoint reads)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": "latent-bridge-checkpoint", "config": model.config.name,
                "size_name": getattr(model, "size_name", "custom"), "size": asdict(model.size),
                "step": step, "model": model.state_dict()}, path)
    return path


def tiny_accompany_package(tiny_trio_package, out_dir, seed: int = 0) -> Path:
    """A copy of a tiny random trio package (export_onnx.tiny) with a surrogate encoder added: the
    trio encoder's weights on the lead rows, nudged by noise, so the graph is a real, distinct one.
    Returns the package directory (out_dir / "trio_16bar" unless the package is named otherwise)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # tiny ops: a thread pool only adds contention
    try:
        return _tiny_accompany_package(Path(tiny_trio_package), Path(out_dir), seed)
    finally:
        torch.set_num_threads(threads)


def _tiny_accompany_package(src: Path, out_dir: Path, seed: int) -> Path:
    from .tiny import tiny_model
    info = parse_manifest(src)
    pkg = out_dir / src.name
    shutil.copytree(src, pkg)
    trio = tiny_model(info["config"], seed=int((info.get("training") or {}).get("seed", 0)))
    run = out_dir / f".{src.name}_surrogate_run"
    trio_ckpt = save_trio_checkpoint(trio, run / "trio" / "best.pt")
    torch.manual_seed(seed)
    surrogate = SurrogateEncoder(trio.config, trio.size)
    init_from_trio(surrogate, trio)
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed + 5)
        for p in surrogate.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    save_surrogate(surrogate, run / CHECKPOINT, step=0, loss="mse", init="trio", trio_run=str(trio_ckpt),
                   trio_config=trio.config.name, trio_step=0)
    add_surrogate_to_package(run, pkg)
    return pkg
