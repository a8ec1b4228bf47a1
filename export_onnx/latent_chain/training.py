"""Codes of the segments, training the chain, writing its package (export_onnx.latent_chain)."""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from bridge.runtime.package import sha256_file

from ..configs import get_config
from ..dataset import load_split
from ..from_package import read_package_model
from ..model import LN2, kl_divergence, vae_loss
from .model import ARCHITECTURE, ChainPart, ChainSize, ChainVAE, chain_parts, class_map, code_nll

CODES_FORMAT = "latent-chain-codes"
CHECKPOINT = "chain.pt"


def segment_codes(model, tokens: np.ndarray, segments: int, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """The short model's (a bridge Model, loaded with precision="fp32": the float encoder the chain
    package embeds) posterior (mu, sigma), each (N, segments, code), of every window of `tokens`
    (N, segments * seg_steps, tracks) cut into `segments` pieces."""
    n = len(tokens)
    if not n:
        empty = np.zeros((0, segments, model.z_size), np.float32)
        return empty, empty.copy()
    pieces = np.asarray(tokens, dtype=np.int64).reshape(n * segments, -1, tokens.shape[-1])
    mus, sigmas = [], []
    for i in range(0, len(pieces), batch):
        mu, sigma = model.encode_tokens(pieces[i:i + batch], return_sigma=True)
        mus.append(mu)
        sigmas.append(sigma)
    shape = (n, segments, model.z_size)
    return np.concatenate(mus).reshape(shape), np.concatenate(sigmas).reshape(shape)


def short_packages(shorts) -> dict[str, Path]:
    """{package name (its model.json "name"): path} of one short package path or several."""
    paths = [shorts] if isinstance(shorts, (str, Path)) else list(shorts)
    return {json.loads((Path(p) / "model.json").read_text())["name"]: Path(p) for p in paths}


def part_tokens(tokens: np.ndarray, part: ChainPart, spec: dict) -> np.ndarray:
    """(N, steps, 1): the part's track of long-config tokens, in the short model's classes."""
    col = np.asarray(tokens[..., part.track], dtype=np.int64)
    if spec["codec"] == "melody":
        col = class_map(int(spec["num_classes"]), part.shift)[col]
    return col[..., None]


def write_codes(shorts, data_dir, config_name: str, out_dir, transpose=(0,), threads: int = 1, log=print) -> dict:
    """`codes_<split>.npz` (mu, sigma, song, shift) for train / validation / test in out_dir: every
    window cut into segments, each part of the chain (CHAIN_PARTS) encoded by its short package's
    float encoder, the parts' codes side by side; the training split also transposed by each of
    `transpose` semitones (pitched tracks together; windows that leave a codec's range are left out
    of that shift; drums, which do not move, are encoded once). Returns a summary (also codes.json)."""
    from bridge.core.codecs import SequenceCodec
    from bridge.runtime.engine import load_model
    config = get_config(config_name)
    parts, packages = chain_parts(config_name), short_packages(shorts)
    missing = {p.short for p in parts} - set(packages)
    if missing:
        raise ValueError(f"{config_name}'s chain needs the short packages {sorted(missing)}")
    models = {name: load_model(packages[name], precision="fp32", threads=threads) for name in {p.short for p in parts}}
    specs = [dict(t) for t in config.tracks]
    codec = SequenceCodec.from_spec(specs)
    segments = config.bars // models[parts[0].short].bars
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"format": CODES_FORMAT, "short_packages": {n: str(packages[n]) for n in models},
               "short_sha256": {n: package_sha256(packages[n]) for n in models}, "parts": [asdict(p) for p in parts],
               "config": config_name, "data": str(data_dir), "segments": segments, "splits": {}}
    for split in ("train", "validation", "test"):
        data = load_split(data_dir, split)
        tokens, songs = np.asarray(data["tokens"]), np.asarray(data["song"])
        shifts = transpose if split == "train" else (0,)
        parts_out, unmoved = [], {}
        for s in shifts:
            if s == 0:
                keep, moved = np.arange(len(tokens)), tokens
            else:
                rows = [(i, codec.transpose(tokens[i].astype(np.int64), s)) for i in range(len(tokens))]
                keep = np.array([i for i, t in rows if t is not None], dtype=np.int64)
                moved = np.stack([t for _, t in rows if t is not None]) if len(keep) else tokens[:0]
            t0 = time.monotonic()
            mus, sigmas = [], []
            for k, part in enumerate(parts):
                pitched = specs[part.track]["codec"] == "melody"
                if not pitched and k in unmoved:
                    mu, sigma = (x[keep] for x in unmoved[k])
                else:
                    mu, sigma = segment_codes(models[part.short], part_tokens(moved, part, specs[part.track]), segments)
                    if not pitched and s == 0:
                        unmoved[k] = (mu, sigma)
                mus.append(mu)
                sigmas.append(sigma)
            log(f"{split} shift {s:+d}: {len(keep)} windows encoded in {time.monotonic() - t0:.0f} s")
            parts_out.append((np.concatenate(mus, -1), np.concatenate(sigmas, -1), songs[keep],
                              np.full(len(keep), s, np.int16)))
        mu, sigma, song, shift = (np.concatenate(x) for x in zip(*parts_out))
        np.savez(out / f"codes_{split}.npz", mu=mu.astype(np.float32), sigma=sigma.astype(np.float32),
                 song=song, shift=shift)
        summary["splits"][split] = {"windows": int(len(mu)), "shifts": list(shifts)}
    (out / "codes.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def codes_summary(run_dir, ckpt: dict | None = None) -> dict:
    """codes.json of the codes a train-chain run trained on (the run's own directory when its
    checkpoint does not say: runs of the first chain-codes wrote both into one directory).
    `ckpt`: the run's checkpoint when the caller has it already loaded."""
    run = Path(run_dir)
    if ckpt is None and (run / CHECKPOINT).is_file():
        ckpt = torch.load(run / CHECKPOINT, map_location="cpu", weights_only=False)
    codes_dir = Path((ckpt or {}).get("codes_dir", run))
    return json.loads((codes_dir / "codes.json").read_text())


def package_sha256(package) -> str:
    """The sha256 of a package's model.json (what a chain records of each short package)."""
    return sha256_file(Path(package) / "model.json")


def load_codes(run_dir, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, sigma) of a chain-codes split: each (windows, segments, code)."""
    d = np.load(Path(run_dir) / f"codes_{split}.npz")
    return torch.from_numpy(d["mu"]), torch.from_numpy(d["sigma"])


def build_chain(shorts, config_name: str, size: ChainSize) -> ChainVAE:
    """A fresh chain (seeded) on the short package(s) `shorts` (a path or several)."""
    models = {name: read_package_model(path)[0].eval() for name, path in short_packages(shorts).items()}
    torch.manual_seed(0)
    return ChainVAE(get_config(config_name), models, size).eval()


def evaluate_codes(model: ChainVAE, mu: torch.Tensor, sigma: torch.Tensor, floor: float, batch: int = 1024) -> dict:
    """Posterior-mean reconstruction of the codes: NLL, KL (bits), RMS error on the dimensions the
    short model uses (posterior sigma < 0.5)."""
    out = {"nll": 0.0, "kl_bits": 0.0, "sq": 0.0, "used": 0}
    with torch.no_grad():
        for i in range(0, len(mu), batch):
            m, s = mu[i:i + batch], sigma[i:i + batch]
            zm, zs = model.encoder.from_codes(m)
            pred = model.decoder.conductor(zm)
            out["nll"] += float(code_nll(pred, m, s, floor).sum())
            out["kl_bits"] += float(kl_divergence(zm, zs).sum()) / LN2
            used = s < 0.5
            out["sq"] += float(((pred - m) ** 2)[used].sum())
            out["used"] += int(used.sum())
    n = len(mu)
    return {"nll": out["nll"] / n, "kl_bits": out["kl_bits"] / n,
            "rms_used": math.sqrt(out["sq"] / max(1, out["used"])), "n": n}


def halving_adam(params, learning_rate: float, steps: int):
    """Adam whose rate halves every quarter of the run (not below 5 %): (optimizer, scheduler)."""
    opt = torch.optim.Adam(params, lr=learning_rate)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.05, 0.5 ** (s / max(1, steps / 4))))


def optimizer_step(opt, sched, params, loss: torch.Tensor) -> None:
    """One clipped (norm 1) Adam step and the schedule's."""
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    sched.step()


def log_entry(logf, entry: dict, log=print) -> None:
    """One validation entry: a line of log.jsonl (flushed) and the console."""
    logf.write(json.dumps(entry) + "\n")
    logf.flush()
    log(json.dumps(entry))


def train_chain(shorts, codes_dir, out_dir, config_name: str = "mel_16bar", size: ChainSize = ChainSize(),
                steps: int = 4000, batch_size: int = 128, learning_rate: float = 1e-3, free_bits: float = 256.0,
                beta: float = 0.2, floor: float = 0.1, seed: int = 0, threads: int = 1,
                validate_every: int = 500, init_from=None, code_noise: float = 0.0, part_weights=None,
                log=print) -> dict:
    """Train the chain's encoder and conductor on the codes in `codes_dir`; writes chain.pt (the
    trained weights and everything needed to rebuild the model) and log.jsonl into out_dir and
    returns the best validation entry. The checkpoint kept is the one with the best validation NLL.
    `init_from`: a train-chain run to continue (its weights and size; steps count on from its step).
    `code_noise`: the encoder reads the codes drawn from N(mu, (code_noise * sigma)^2) instead of mu
    (the short encoders' own uncertainty as augmentation, against overfitting a small dataset); the
    conductor's targets stay mu. `part_weights`: one factor per part on its codes' likelihood (e.g.
    (3, 3, 1): the trio's lead and bass codes count three times the drums', whose 100 used dimensions
    per segment otherwise dominate the loss)."""
    torch.set_num_threads(threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    offset, wall0, history = 0, 0.0, []
    if init_from is not None:
        model, prev = load_chain(init_from, shorts)
        packages = chain_packages(prev, shorts)
        size, offset, wall0 = ChainSize(**prev["size"]), int(prev["step"]), float(prev["wall_time"])
        config_name = prev["config"]
        history = prev.get("history", []) + [{"steps": offset, "recipe": prev["recipe"]}]
    else:
        model = build_chain(shorts, config_name, size)
        packages = short_packages(shorts)
    train_mu, train_sigma = load_codes(codes_dir, "train")
    val_mu, val_sigma = load_codes(codes_dir, "validation")
    params = [p for p in model.parameters() if p.requires_grad]
    opt, sched = halving_adam(params, learning_rate, steps)
    gen = torch.Generator().manual_seed(seed)
    weight = None
    if part_weights is not None:
        if len(part_weights) != len(model.code_slices):
            raise ValueError(f"part_weights: one per part ({len(model.code_slices)}), got {list(part_weights)}")
        weight = torch.cat([torch.full((b - a,), float(w)) for (a, b), w in zip(model.code_slices, part_weights)])
    best, best_entry, logf = math.inf, None, open(out / "log.jsonl", "a")
    t0 = time.monotonic()
    try:
        for step in range(1, steps + 1):
            model.train()
            idx = torch.randint(0, len(train_mu), (batch_size,), generator=gen)
            m, s = train_mu[idx], train_sigma[idx]
            seen = m + code_noise * s * torch.randn(m.shape, generator=gen) if code_noise else m
            zm, zs = model.encoder.from_codes(seen)
            z = zm + zs * torch.randn(zm.shape, generator=gen)
            r = code_nll(model.decoder.conductor(z), m, s, floor, weight)
            kl = kl_divergence(zm, zs)
            optimizer_step(opt, sched, params, vae_loss(r, kl, beta, free_bits))
            if step % validate_every == 0 or step == steps:
                model.eval()
                entry = {"step": offset + step, "wall_time": round(wall0 + time.monotonic() - t0, 1),
                         "train_nll": float(r.detach().mean()), "train_kl_bits": float(kl.detach().mean()) / LN2,
                         "lr": sched.get_last_lr()[0],
                         "validation": evaluate_codes(model, val_mu, val_sigma, floor)}
                log_entry(logf, entry, log)
                if entry["validation"]["nll"] < best:
                    best, best_entry = entry["validation"]["nll"], entry
                    torch.save({"format": ARCHITECTURE, "short_packages": {n: str(p) for n, p in packages.items()},
                                "short_sha256": {n: package_sha256(p) for n, p in packages.items()}, "config": config_name,
                                "codes_dir": str(Path(codes_dir).resolve()),
                                "size": asdict(size), "state": model.trained_state(), "step": offset + step,
                                "recipe": {"batch_size": batch_size, "learning_rate": learning_rate,
                                           "free_bits": free_bits, "beta": beta, "floor": floor, "steps": steps, "code_noise": code_noise,
                                           "part_weights": None if part_weights is None else list(part_weights),
                                           "seed": seed}, "history": history,
                                "validation": entry["validation"], "wall_time": entry["wall_time"]},
                               out / CHECKPOINT)
    finally:
        logf.close()
    return best_entry


def recorded_packages(ckpt: dict) -> dict[str, Path]:
    """{name: path} of the short packages a chain checkpoint was trained on (also from checkpoints
    of one short package, which recorded `short_package` and one sha256)."""
    if "short_packages" in ckpt:
        return {n: Path(p) for n, p in ckpt["short_packages"].items()}
    return short_packages(ckpt["short_package"])


def chain_packages(ckpt: dict, shorts=None) -> dict[str, Path]:
    """The recorded short packages, with `shorts` (a path or several) in place of those of their names."""
    return {**recorded_packages(ckpt), **(short_packages(shorts) if shorts is not None else {})}


def recorded_sha256(ckpt: dict) -> dict[str, str]:
    sha = ckpt["short_sha256"]
    return sha if isinstance(sha, dict) else {next(iter(recorded_packages(ckpt))): sha}


def load_chain(run_dir, shorts=None) -> tuple[ChainVAE, dict]:
    """The chain of a train-chain run (its recorded short packages by default; `shorts` names other
    copies of them), with the trained weights. Raises ValueError for a short package other than
    the one the chain was trained on."""
    ckpt = torch.load(Path(run_dir) / CHECKPOINT, map_location="cpu", weights_only=False)
    if ckpt.get("format") != ARCHITECTURE:
        raise ValueError(f"{run_dir}: not a latent-chain checkpoint")
    packages = chain_packages(ckpt, shorts)
    want = recorded_sha256(ckpt)
    for name, path in packages.items():
        if want.get(name) != package_sha256(path):
            raise ValueError(f"{path}: not the short package this chain was trained on (model.json changed)")
    model = build_chain(list(packages.values()), ckpt["config"], ChainSize(**ckpt["size"]))
    missing = set(model.trained_state()) - set(ckpt["state"])
    if missing:
        raise ValueError(f"{run_dir}: checkpoint lacks {sorted(missing)}")
    with torch.no_grad():
        named = dict(model.named_parameters())
        for k, v in ckpt["state"].items():
            named[k].copy_(v)
    return model.eval(), ckpt


def write_chain_directions(model: ChainVAE, run_dir, data_dir=None, ckpt: dict | None = None, **kwargs) -> Path:
    """directions.json in the run (export_onnx.directions on the chain: attribute vectors and
    principal directions for the knobs), from the validation windows of `data_dir` (default: the
    dataset chain-codes read)."""
    from ..directions import write_directions
    data_dir = data_dir or codes_summary(run_dir, ckpt)["data"]
    return write_directions(run_dir, data_dir, model=model, **kwargs)


def write_chain_metrics(model: ChainVAE, run_dir, data_dir=None, max_examples: int = 256) -> Path:
    """metrics.json in the run, as `evaluate` writes it for a MusicVAE (per split: teacher-forced and
    argmax reconstruction accuracy from the posterior mean, KL bits) on a seeded sample of the
    validation and test windows."""
    from ..evaluate import evaluate_tokens, seeded_sample, write_metrics
    run = Path(run_dir)
    ckpt = torch.load(run / CHECKPOINT, map_location="cpu", weights_only=False)
    data_dir = data_dir or codes_summary(run, ckpt)["data"]
    path = run / "metrics.json"
    path.unlink(missing_ok=True)
    for split in ("validation", "test"):
        tokens = np.asarray(load_split(data_dir, split)["tokens"])
        available = len(tokens)
        if not available:
            continue
        with torch.no_grad():
            m = evaluate_tokens(model, seeded_sample(tokens, max_examples))
        m.update({"windows_in_split": available, "config": model.config.name, "size": ARCHITECTURE,
                  "params": sum(p.numel() for p in model.parameters()), "split": split, "data": str(data_dir),
                  "checkpoint": CHECKPOINT, "step": ckpt["step"], "wall_time": ckpt["wall_time"]})
        write_metrics(path, m)
    return path


def write_chain_package(run_dir, out_dir, name: str = None, weights: str = "fp16", shorts=None,
                        data_dir=None, directions: bool = True, max_mb: float | None = None) -> dict:
    """Export a trained chain as a model package (graphs parity-checked against torch), with the
    knobs' directions computed on the validation windows unless `directions` is False."""
    from ..export import MAX_PACKAGE_MB, load_directions, write_package
    model, ckpt = load_chain(run_dir, shorts)
    attributes, dirs = ({}, [])
    if directions:
        attributes, dirs = load_directions(write_chain_directions(model, run_dir, data_dir, ckpt), model.z_size)
    packages = chain_packages(ckpt, shorts)
    sha = recorded_sha256(ckpt)
    short_models = []
    for short, path in packages.items():
        info = json.loads((path / "model.json").read_text())
        short_models.append({"name": short, "config": info["config"], "model_json_sha256": sha[short],
                             "z_size": info["z_size"], "enc_units": info["size"]["enc_units"],
                             "training": info.get("training", {}).get("history", [])})
    training = {"architecture": ARCHITECTURE, "config": ckpt["config"], "step": ckpt["step"],
                "wall_time": ckpt["wall_time"], "recipe": ckpt["recipe"], "size": ckpt["size"],
                "parts": [asdict(p) for p in model.parts],
                "short_model": short_models[0], "short_models": short_models, "run": Path(run_dir).name}
    run = Path(run_dir)
    metrics_path = write_chain_metrics(model, run, data_dir)
    metrics = {"source": "metrics.json", **json.loads(metrics_path.read_text()), "codes": ckpt["validation"]}
    config_path = run / "training_config.json"
    config_path.write_text(json.dumps(training, indent=1) + "\n")
    card = write_chain_card(run_dir)
    return write_package(model, out_dir, name=name, weights=weights, training=training, metrics=metrics,
                         attributes=attributes, directions=dirs, max_mb=max_mb or MAX_PACKAGE_MB,
                         extra_files={"MODEL_CARD.md": card, "metrics.json": metrics_path,
                                      "training_config.json": config_path})


def write_chain_card(run_dir, notes: str = "") -> Path:
    """MODEL_CARD.md for a train-chain run: what the model is, what it was trained on, the recipe, the
    validation curve and the metrics of metrics.json (the audit adds its own section to the package's
    copy)."""
    run = Path(run_dir)
    ckpt = torch.load(run / CHECKPOINT, map_location="cpu", weights_only=False)
    codes = codes_summary(run, ckpt)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    packages, sha = recorded_packages(ckpt), recorded_sha256(ckpt)
    shorts = {n: json.loads((p / "model.json").read_text()) for n, p in packages.items()}
    config = get_config(ckpt["config"])
    parts = [ChainPart(**p) for p in codes.get("parts", [])] or list(chain_parts(ckpt["config"]))
    short = shorts[parts[0].short]
    names = " and ".join(f"`{n}`" for n in shorts)
    tracks = [dict(t) for t in config.tracks]
    written = "; ".join(f"{tracks[p.track]['name']} by `{p.short}`" + (f" (moved up {p.shift} semitones, down again "
                                                                         "on the way out)" if p.shift else "")
                        for p in parts)
    sources = _dataset_sources(codes["data"])
    r, size, splits = ckpt["recipe"], ckpt["size"], codes["splits"]
    lines = [
        f"# {ckpt['config']} — model card", "",
        f"A {config.bars}-bar {config.kind} VAE over the latent codes of the shipped {names} "
        f"package{'s' if len(shorts) > 1 else ''} (export_onnx.latent_chain). Each {short['bars']}-bar segment "
        f"of each track has a code from its short model ({written}); the encoder runs the short models' "
        f"encoders on the segments and summarises the {codes['segments']} segments' codes, side by side, "
        + (f"with one linear map of the {len(size['used'])} code dimensions the short models use per segment into "
           f"z ({size['z_size']} dimensions); the conductor, linear too, turns z into the codes of every segment"
           if size.get("linear") else
           f"with a BiLSTM ({size['enc_units']} units per direction) into z ({size['z_size']} dimensions); the "
           f"conductor (a {size['cond_layers']}-layer LSTM of {size['cond_units']} units and a linear map) turns z "
           "into the codes of every segment")
        + ", and the short models' decoders, frozen, write the notes.", "",
        "## Data", "",
        f"- {sources}: the {config.bars}-bar windows of the `{ckpt['config']}` dataset, split by song: "
        f"{splits['train']['windows']:,} training windows (transpositions {splits['train']['shifts']}), "
        f"{splits['validation']['windows']:,} validation, {splits['test']['windows']:,} test.",
    ] + [f"- `{n}` (frozen) was trained on its own data; its card says which. Its model.json sha256: "
         f"`{sha[n][:16]}…`." for n in shorts] + [
        "",
        "## Training", "",
        (f"Fitted in closed form: a weighted PCA (export_onnx.latent_chain.linear) of {r['windows']:,} training "
         f"windows' codes, the {len(size['used'])} code dimensions the short models use in each segment, "
         f"{size['z_size']} components (part weights {r.get('part_weights')}), likelihood floor {r['floor']:g}; "
         f"{ckpt['wall_time'] / 60:.1f} min on one CPU thread." if r.get("method") == "pca" else
         (f"The last {ckpt['step'] - ckpt['history'][-1]['steps']:,} of " if ckpt.get("history") else "")
        + f"{ckpt['step']:,} steps of batch {r['batch_size']} on the codes (Adam, lr {r['learning_rate']:g} halving "
        f"every {r['steps'] // 4:,} steps, {r['free_bits']:g} free bits, beta {r['beta']:g}, likelihood floor "
        f"{r['floor']:g}), {ckpt['wall_time'] / 60:.0f} min in all on one CPU thread; the checkpoint with the best "
        f"validation likelihood." + "".join(
            f" Before: a run to step {h['steps']:,} (lr {h['recipe']['learning_rate']:g}, beta {h['recipe']['beta']:g}, "
            f"{h['recipe']['free_bits']:g} free bits)." for h in ckpt.get("history", []))), "",
        "| step | validation NLL (nats / window) | KL (bits) | code RMS error (used dims) |",
        "|---|---|---|---|",
    ]
    for e in log:
        v = e["validation"]
        lines.append(f"| {e['step']:,} | {v['nll']:.0f} | {v['kl_bits']:.0f} | {v['rms_used']:.3f} |")
    plot_chain_curve(log, run / "curve.png")
    lines += ["", "![validation curve](curve.png)", ""]
    metrics_path = run / "metrics.json"
    if metrics_path.is_file():
        m = json.loads(metrics_path.read_text())
        test = m.get("splits", {}).get("test", m)
        lines += [f"## Metrics (test split, a seeded random sample of {test['n']:,} of its "
                  f"{test['windows_in_split']:,} windows; argmax decoding from the posterior mean)", "",
                  "| track | teacher-forced accuracy | reconstruction accuracy |", "|---|---|---|"]
        for track, acc in test["reconstruction_accuracy"].items():
            lines.append(f"| {track} | {test['teacher_forced_accuracy'][track]:.3f} | {acc:.3f} |")
        lines += ["", f"KL: {test['kl_bits']:.0f} bits per window.", ""]
    lines += [
        "## Known weaknesses", "",
        f"- It can only write what {names} write{'s' if len(shorts) == 1 else ''}: {short['bars']} bars at a time "
        "from one code per track. Phrases that cross a segment boundary are written as two halves; the form "
        "(repeats, returns) comes from the conductor's codes.",
    ] + ([
        "- Each track's decoder sees only its own track; the tracks agree only through the codes the conductor "
        "gives each segment (a bass note can clash with a lead note the codes did not pin down).",
    ] if len(parts) > 1 else []) + [
        "- The first step of a segment reads the previous segment's last token, which the short decoders saw "
        "only as zeros in training (on mel_16bar's audit windows resetting it to zeros changed reconstruction "
        "by +0.0007, so the runtime keeps one decode loop).",
        f"- The package carries its own copy of {names}' encoders and decoders as they were when it was "
        "trained: a re-shipped short model does not change it. To build on a new one, run `chain-codes` and "
        "`train-chain` (or `fit-chain`) again (a chain run refuses a short package other than the one it recorded).",
        "- `train --init-from` cannot continue it (not a MusicVAE); `train-chain --init-from RUN` continues a "
        "chain run.",
    ]
    if notes:
        lines += ["", notes]
    out = run / "MODEL_CARD.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def _dataset_sources(data_dir) -> str:
    """The dataset's sources as the card names them (its summary.json), e.g. "`pop909`"."""
    path = Path(data_dir) / "summary.json"
    labels = [src.get("label", "?") for src in json.loads(path.read_text()).get("sources", [])] if path.is_file() else []
    return ", ".join(f"`{x}`" for x in labels) or "the dataset"


def plot_chain_curve(log: list[dict], out: Path) -> None:
    """Validation NLL of the codes and their RMS error against step (the card's curve.png)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3), dpi=100)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    steps = [e["step"] for e in log]
    ax1.plot(steps, [e["validation"]["nll"] for e in log], marker=".", color="#d62728")
    ax2.plot(steps, [e["validation"]["rms_used"] for e in log], marker=".")
    ax1.set_title("validation NLL of the segment codes (nats)", fontsize=9)
    ax2.set_title("code RMS error (dimensions the 2-bar model uses)", fontsize=9)
    for ax in (ax1, ax2):
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(str(out), format="png")
