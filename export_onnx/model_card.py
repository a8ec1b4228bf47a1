"""`python -m export_onnx model-card RUN --data DATA`: MODEL_CARD.md and a training curve for a run.

Reads what the other commands left in the run directory (config.json, log.jsonl, metrics.json from
`evaluate`) and the dataset's summary.json, so the card states measured numbers only. The exporter
copies MODEL_CARD.md into the package.
"""
from __future__ import annotations

import json
from pathlib import Path

# held-out reconstruction accuracy: (our target, the paper's Table 1 with scheduled sampling)
TARGETS = {"mel_2bar": (0.95, "0.987"), "drums_2bar": (0.90, "0.963"),
           "mel_16bar": (0.70, "0.722"), "trio_16bar": (0.65, "0.76–0.87")}
# written into a trio package's card by `add-surrogate`; kept when the card is refreshed in a package
SURROGATE_HEADING = "## Accompaniment (surrogate encoder)"
AUDIT_HEADING = "## Musical audit"
INT8_HEADING = "## int8 decoder step"     # written by `add-int8` (export_onnx.int8)
SAMPLER_HEADING = "## Prior sampler (a pair)"   # written by `add-sampler` (export_onnx.pair)
INT8_ENCODER_HEADING = "## int8 encoder"     # written by `add-int8` (export_onnx.int8_encoder)
PRIOR_HEADING = "## Fitted prior"     # written by `fit-prior` (export_onnx.latent_prior)
RECON_CURVE_HEADING = "## Reconstruction over training"   # `recon_curve_section`: a missed target's curve
# written into a package's card after export (add-surrogate, audit, add-int8): kept when the card is refreshed
PACKAGE_SECTIONS = (SURROGATE_HEADING, AUDIT_HEADING, INT8_HEADING, INT8_ENCODER_HEADING, SAMPLER_HEADING,
                    PRIOR_HEADING, RECON_CURVE_HEADING)
LICENSES = {"pop909": "MIT (POP909, Wang et al., ISMIR 2020)",
            "nottingham": "GPL-3.0 (Nottingham Music Database, cleaned by Jukedeck)",
            "groove": "CC BY 4.0 (Groove MIDI Dataset, Gillick et al., ICML 2019)",
            "lmd_beatles": "CC BY 4.0 (Lakh MIDI Dataset, Raffel 2016)"}


def read_log(run_dir: Path, split: str | None = None) -> list[dict]:
    """log.jsonl entries of a run, those of `split` only when given."""
    path = Path(run_dir) / "log.jsonl"
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    return entries if split is None else [e for e in entries if e.get("split") == split]


def training_facts(run_dir: Path) -> dict:
    """Steps, wall time and throughput from the log (a resumed run's wall time continues)."""
    train = read_log(run_dir, "train")
    config = json.loads((run_dir / "config.json").read_text())
    if not train:
        return {"steps": 0}
    last = train[-1]
    batch = config.get("batch_size") or config.get("recipe", {}).get("batch_size") or config["config"]["recipe"]["batch_size"]
    wall = float(last.get("wall_time", 0.0))
    return {"steps": int(last["step"]), "wall_time_s": wall, "batch_size": int(batch),
            "steps_per_s": last["step"] / wall if wall else None,
            "examples_per_s": last["step"] * batch / wall if wall else None,
            "beta": last.get("beta"), "p_sample": last.get("p_sample"), "lr": last.get("lr")}


def plot_curves(curves: dict, out: Path) -> None:
    """Validation teacher-forced accuracy and reconstruction loss against step, one line per entry of
    `curves` (label -> validation log entries; a single unlabeled run: {None: entries})."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3), dpi=100)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    for label, val in curves.items():
        steps = [e["step"] for e in val]
        ax1.plot(steps, [sum(e["acc"]) / len(e["acc"]) for e in val], marker=".", label=label or "teacher-forced")
        rec = [(e["step"], e["recon_acc"]) for e in val if e.get("recon_acc") is not None]
        if rec:   # logged since stop 20: the audit's statistic, free-running from the posterior mean
            ax1.plot(*zip(*rec), marker="x", linestyle="--",
                     label=f"{label + ': ' if label else ''}reconstruction (argmax from μ)")
        ax2.plot(steps, [e["r_loss"] for e in val], marker=".", label=label,
                 **({} if len(curves) > 1 else {"color": "#d62728"}))
    ax1.set_title("validation accuracy (teacher-forced; reconstruction when logged)", fontsize=9)
    ax2.set_title("validation reconstruction loss (nats)", fontsize=9)
    for ax in (ax1, ax2):
        ax.set_xlabel("step")
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(str(out), format="png")


def recon_curve_section(run_dir, out_png: Path, target: float, image: str, closing: str = "") -> str:
    """A card section for a missed reconstruction target: the run's logged `recon_acc` (the audit's
    statistic, free-running from the posterior mean on validation windows) and teacher-forced
    accuracy against step, with the target, plotted to `out_png` (linked as `image`), and `closing`
    (what would close the gap, from the measurements).

    Raises:
        ValueError: the run logged no recon_acc (runs before stop 20 did not)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    run_dir = Path(run_dir)
    val = [e for e in read_log(run_dir, "validation") if e.get("recon_acc") is not None]
    if not val:
        raise ValueError(f"{run_dir}: no validation line with recon_acc")
    steps = [e["step"] for e in val]
    rec = [e["recon_acc"] for e in val]
    tf = [sum(e["acc"]) / len(e["acc"]) for e in val]
    fig = Figure(figsize=(6, 3), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot(steps, tf, marker=".", label="teacher-forced accuracy")
    ax.plot(steps, rec, marker="x", label="reconstruction accuracy (argmax from μ)")
    ax.axhline(target, color="#d62728", linestyle="--", label=f"target {target:g}")
    ax.set_xlabel("step of the run")
    n = val[-1].get("recon_n")
    ax.set_title(f"{run_dir.name}: validation" + (f" ({n} windows)" if n else ""), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(str(out_png), format="png")
    best = max(range(len(rec)), key=rec.__getitem__)
    lines = [RECON_CURVE_HEADING, "",
             f"The audit's reconstruction statistic over the run `{run_dir.name}` ({steps[0]:,} → {steps[-1]:,} "
             f"steps, validated every {steps[1] - steps[0] if len(steps) > 1 else 0:,}): {rec[0]:.3f} at the first "
             f"validation, {rec[-1]:.3f} at the last, best {rec[best]:.3f} (step {steps[best]:,}); teacher-forced "
             f"accuracy {tf[0]:.3f} → {tf[-1]:.3f}. Target {target:g}.", "", f"![reconstruction over training]({image})"]
    if closing:
        lines += ["", closing]
    return "\n".join(lines) + "\n"


def fmt(v, digits=3) -> str:
    """A number for a markdown table; "—" for a missing one."""
    return "—" if v is None else f"{v:.{digits}f}"


def _spread(val: list[dict]) -> str:
    spread = val[-1].get("z_spread") if val else None
    if spread is None:
        return ""
    warn = " — the encoder has collapsed: z says almost nothing about the input" if spread < 0.01 else ""
    return f" Posterior-mean spread at the last validation (std across examples, mean over z dims): {spread:.3f}{warn}."


def _checkpoint(metrics: dict, facts: dict | None = None, schedule: str = "paper") -> str:
    if metrics.get("checkpoint") == "best.pt" and metrics.get("step") is not None:
        if facts and abs(metrics["step"] - facts.get("steps", -1)) <= 50:
            why = "the run's end"
        else:
            why = ("lowest validation objective at the final β" if schedule == "run"
                   else "lowest validation reconstruction loss")
        return f"Shipped and scored: the checkpoint of step {metrics['step']:,} ({why}).\n"
    return ""


def _windows(metrics: dict) -> str:
    n, total = metrics.get("n", "?"), metrics.get("windows_in_split")
    if isinstance(n, int) and isinstance(total, int) and total > n:
        return f"a seeded random sample of {n:,} of its {total:,} windows"
    return f"{n:,} windows" if isinstance(n, int) else f"{n} windows"


def _trend(val: list[dict]) -> str:
    """How much the validation curve moved over the last half of the run: evidence for 'more steps'."""
    if len(val) < 2:
        return ""
    a, b = val[len(val) // 2], val[-1]
    acc = lambda e: sum(e["acc"]) / len(e["acc"])  # noqa: E731
    rec = ""
    if a.get("recon_acc") is not None and b.get("recon_acc") is not None:
        n = f", {b['recon_n']} validation windows" if b.get("recon_n") else ""
        rec = (f", and reconstruction accuracy (argmax from the posterior mean, the audit's statistic{n}) "
               f"{a['recon_acc']:.3f} → {b['recon_acc']:.3f}")
    return (f" Over the second half of the run (steps {a['step']:,} → {b['step']:,}) validation teacher-forced "
            f"accuracy went {acc(a):.3f} → {acc(b):.3f} and reconstruction loss {a['r_loss']:.1f} → "
            f"{b['r_loss']:.1f} nats{rec}.")


def _closing(mean, target, rising, facts, val=()) -> str:
    if mean is None or target is None or mean >= target:
        return ""
    trend = ("The validation reconstruction loss was still falling at the last validations, so the run had not "
             "converged" if rising else "The validation loss had flattened")
    return f"""## What would close the gap
{trend}.{_trend(list(val))} In order of expected effect: more steps (`python -m export_onnx train ... --resume` continues this run;
the paper trains for far longer at batch 512), a longer planned run (the schedules are sized to the run:
docs/training.md), the `full` size on a GPU, and more data.
"""


def _recipe_line(config: dict, val: list[dict], run_dir: Path) -> str:
    """The recipe that shaped the KL, the KL at the last validation against the free bits, and the
    training history carried over from the package the run started from (`train --init-from`)."""
    recipe = (config.get("config") or {}).get("recipe") or {}
    free = recipe.get("free_bits")
    last_kl = val[-1].get("kl_bits") if val else None
    out = []
    if recipe.get("schedule") == "run":
        out.append(f"Recipe sized to the run: β to {recipe.get('max_beta')} by {recipe.get('beta_warmup', 0):.0%} of it, "
                   f"scheduled sampling ({recipe.get('sampling_method', 'two_pass')}) to "
                   f"{recipe.get('final_sampling_probability')} by {recipe.get('sampling_ramp', 0):.0%}, word dropout "
                   f"{recipe.get('input_dropout', 0)}, {free:g} free bits.")
    elif recipe:
        out.append(f"The paper's per-step schedules (β rate {recipe.get('beta_rate')}, sampling rate "
                   f"{recipe.get('sampling_rate')}), β max {recipe.get('max_beta')}, {free:g} free bits.")
    if last_kl is not None and free:
        out.append(f"KL at the last validation: {last_kl:.1f} bits = {last_kl / free:.2f}× the {free:g} free bits.")
    ck = run_dir / "latest.pt"
    if ck.is_file():
        try:
            import torch
            hist = torch.load(ck, map_location="cpu", weights_only=False).get("history") or []
        except Exception:   # an unreadable checkpoint only costs the history line
            hist = []
        if len(hist) > 1:
            steps = sum(h.get("steps", 0) for h in hist)
            hours = sum(h.get("wall_time", 0.0) for h in hist) / 3600
            out.append(f"Continued from the shipped package (`train --init-from`): {len(hist)} runs, "
                       f"{steps:,} steps and {hours:.1f} h of training in all.")
    return ("\n".join(out) + "\n") if out else ""


def write_model_card(run_dir, data_dir, notes: str = "") -> Path:
    run_dir, data_dir = Path(run_dir), Path(data_dir)
    config = json.loads((run_dir / "config.json").read_text())
    cfg = config.get("config", config)
    name = cfg["name"]
    summary = json.loads((data_dir / "summary.json").read_text())
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    facts = training_facts(run_dir)
    val = read_log(run_dir, "validation")
    plot_curves({None: val}, run_dir / "curve.png")
    target, paper = TARGETS.get(name, (None, "—"))
    rising = len(val) >= 4 and val[-1]["r_loss"] < min(e["r_loss"] for e in val[-4:-1])

    recon = metrics.get("reconstruction_accuracy", {})
    tf = metrics.get("teacher_forced_accuracy", {})
    tracks = [k for k in recon if k != "mean"]
    rows = "\n".join(f"| {t} | {fmt(tf.get(t))} | {fmt(recon.get(t))} |" for t in tracks)
    mean = recon.get("mean")
    verdict = ("not evaluated yet" if mean is None or target is None else
               f"target {target:.2f} reached" if mean >= target else
               f"**{target - mean:.3f} below the target {target:.2f}**")
    sources = "\n".join(
        f"- `{s['label']}`: {s.get('files_read', '?')} files read, "
        f"{sum(s.get('examples', {}).values())} windows; license: {LICENSES.get(s['label'], 'see ../shared/data/README.md')}"
        for s in summary.get("sources", []))
    splits = ", ".join(f"{k} {v['examples']:,} windows / {v['songs']} songs" for k, v in summary["splits"].items())
    size = config.get("size") or cfg.get("size") or {}
    text = f"""# {name} — model card

{cfg['kind']} model over {cfg['bars']} bars ({'hierarchical: conductor + core decoders' if cfg['hierarchical'] else 'flat LSTM decoder'}),
MusicVAE architecture (Roberts et al., 2018), size `{config.get('size_name', 'small')}`: {json.dumps(size)}.

## Data
{sources}

Splits by song (Groove: the official split): {splits}.

## Training
{facts.get('steps', 0):,} steps at batch {facts.get('batch_size', '?')} on CPU (2 cores shared with other work),
wall time {facts.get('wall_time_s', 0) / 3600:.2f} h, {fmt(facts.get('steps_per_s'), 2)} steps/s,
{fmt(facts.get('examples_per_s'), 1)} examples/s. At the last step: β = {fmt(facts.get('beta'), 4)},
scheduled-sampling probability {fmt(facts.get('p_sample'), 3)}, learning rate {fmt(facts.get('lr'), 6)}.
{_recipe_line(config, val, run_dir)}{_checkpoint(metrics, facts, ((cfg.get("recipe") or {}).get("schedule", "paper")))}Training curve: `curve.png` in the run directory (copied to `docs/models/{name}_curve.png`).

## Metrics ({metrics.get('split', '?')} split, {_windows(metrics)}; argmax decoding from the posterior mean)
| track | teacher-forced accuracy | reconstruction accuracy |
|---|---|---|
{rows}

Mean reconstruction accuracy {fmt(mean)}; KL {fmt(metrics.get('kl_bits'), 1)} bits.{_spread(val)}
Target {fmt(target, 2)}, paper {paper} (~1.5M songs, GPUs): {verdict}.

{_closing(mean, target, rising, facts, val)}
## Known weaknesses
{notes or '- none recorded'}
"""
    out = run_dir / "MODEL_CARD.md"
    out.write_text(text)
    return out


def card_section(card: str, heading: str) -> str | None:
    """The section of `card` whose heading line is `heading` (at the start of a line: a sentence that
    quotes the heading is not the section), up to the next "## " heading; None if absent."""
    text = "\n" + card
    at = text.find("\n" + heading + "\n")
    if at < 0:
        at = text.find("\n" + heading) if text.endswith("\n" + heading) else -1
    if at < 0:
        return None
    tail = text[at + 1 + len(heading):]
    return heading + tail.split("\n## ", 1)[0]


def with_section(card: str, section: str) -> str:
    """`card` with `section` (its first line is its heading) in place of the section of that heading,
    or appended when the card has none."""
    heading = section.split("\n", 1)[0]
    old = card_section(card, heading)
    if old is not None:
        return card.replace(old, section.rstrip("\n") + "\n", 1)
    return card.rstrip("\n") + "\n\n" + section


def refresh_package_card(run_dir, package_dir) -> Path:
    """Copy RUN/MODEL_CARD.md into an exported package (keeping the sections written into the package
    after export: accompaniment, musical audit, int8 decoder step) and update the card's sha256 in model.json, without
    re-exporting the graphs."""
    from bridge.runtime.package import parse_manifest, update_manifest
    run_dir, package_dir = Path(run_dir), Path(package_dir)
    parse_manifest(package_dir)          # a package, before the card is touched
    card = package_dir / "MODEL_CARD.md"
    text = (run_dir / "MODEL_CARD.md").read_text()
    old = card.read_text() if card.is_file() else ""
    for heading in PACKAGE_SECTIONS:
        kept = card_section(old, heading)
        if kept:
            text = with_section(text, kept)
    card.write_text(text)
    update_manifest(package_dir, files=[card.name])
    return card


def _main(args) -> int:
    print(write_model_card(args.run, args.data, args.notes))
    if args.package:
        print(refresh_package_card(args.run, args.package))
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("model-card", help="write MODEL_CARD.md and curve.png for a training run")
    p.add_argument("run", help="run directory (config.json, log.jsonl, metrics.json)")
    p.add_argument("--data", required=True, help="the dataset directory the run trained on (summary.json)")
    p.add_argument("--notes", default="", help="markdown for the 'Known weaknesses' section")
    p.add_argument("--package", default=None,
                   help="also put the card into this exported package (model.json's sha256 updated)")
    p.set_defaults(func=_main)
