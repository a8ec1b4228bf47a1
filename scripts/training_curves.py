"""Validation curves of several runs against training minutes, in one plot (docs/training.md).

    .venv/bin/python scripts/training_curves.py --run "two-pass, run-sized recipe=runs/mel_2bar_30min" \
        --reference docs/models/mel_2bar_shipped_curve.json --out docs/training/mel_2bar_30min

Each `--run LABEL=DIR` reads DIR/log.jsonl: validation entries (teacher-forced accuracy, reconstruction
loss, KL bits) placed at the CPU time of the train entry of the same step (`cpu_time`; for older logs
`DIR@SAMPLES`, a sampler file of the process's CPU ticks, see cpu_from_samples). A `--reference`
JSON holds {"label", "points": [{"minutes", "acc", "r_loss"}...], "source"} for a run whose log is gone.
Writes OUT.png and OUT.json (the plotted numbers).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def cpu_from_samples(path: Path):
    """A function training wall seconds -> CPU seconds of the run, from a sampler file written while it
    ran (lines: unix time, CPU ticks of the process (1/100 s), last logged step, its training wall time);
    linear through (0, 0) and the samples. For runs logged before train.py wrote `cpu_time`."""
    import numpy as np
    rows = [ln.split() for ln in path.read_text().splitlines() if len(ln.split()) == 4]
    walls = np.array([0.0] + [float(r[3]) for r in rows])
    cpus = np.array([0.0] + [float(r[1]) / 100.0 for r in rows])
    order = np.argsort(walls)
    return lambda w: float(np.interp(w, walls[order], cpus[order]))


def run_points(run_dir: Path, cpu_samples: Path | None = None) -> list[dict]:
    """Validation points at the run's CPU minutes (`cpu_time` in the log, else `cpu_samples`, else
    training wall minutes)."""
    wall, points = {}, []
    to_cpu = cpu_from_samples(cpu_samples) if cpu_samples else None
    for line in (run_dir / "log.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e.get("split") == "train":
            if "cpu_time" in e:
                wall[e["step"]] = e["cpu_time"]
            else:
                wall[e["step"]] = to_cpu(e["wall_time"]) if to_cpu else e["wall_time"]
    for line in (run_dir / "log.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e.get("split") == "validation" and e["step"] in wall:
            acc = e["acc"]
            points.append({"step": e["step"], "minutes": wall[e["step"]] / 60.0,
                           "acc": sum(acc) / len(acc), "r_loss": e["r_loss"], "kl_bits": e.get("kl_bits"),
                           "free_bits": e.get("free_bits")})
    return points


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="append", default=[], metavar="LABEL=DIR[@CPU_SAMPLES]")
    p.add_argument("--reference", action="append", default=[], help="JSON file of a run's points")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = []
    for item in args.run:
        label, _, d = item.partition("=")
        d, _, samples = d.partition("@")
        series.append({"label": label, "points": run_points(Path(d), Path(samples) if samples else None), "source": d})
    for ref in args.reference:
        series.append(json.loads(Path(ref).read_text()))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for s in series:
        xs = [q["minutes"] for q in s["points"]]
        axes[0].plot(xs, [q["acc"] for q in s["points"]], marker=".", label=s["label"])
        axes[1].plot(xs, [q["r_loss"] for q in s["points"]], marker=".", label=s["label"])
    axes[0].set_title("validation teacher-forced accuracy")
    axes[1].set_title("validation reconstruction loss (nats)")
    for ax in axes:
        ax.set_xlabel("CPU minutes of training")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out.with_suffix(".png"), dpi=100)
    out.with_suffix(".json").write_text(json.dumps(series, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
