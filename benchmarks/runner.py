"""`python -m benchmarks`: the command line (see the package docstring)."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time

from . import daemon, inprocess, machine, packages, peers, report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--models", action="append", default=[], metavar="DIR",
                   help="a package dir or a dir of packages (repeatable); default: random-weight packages "
                        "of the configs' small sizes, built once with the exporter")
    p.add_argument("--model", default=None, help="comma-separated package names to keep (default: all)")
    p.add_argument("--no-shipped", action="store_true", help="skip the packages shipped in bridge/models/")
    p.add_argument("--size", default="small", choices=["tiny", "small", "full"],
                   help="size of the random-weight packages (default small)")
    p.add_argument("--providers", default=None,
                   help="comma-separated onnxruntime providers (cpu,cuda; default: cpu, plus cuda when available)")
    p.add_argument("--quick", action="store_true", help="a few iterations of everything (smoke test)")
    p.add_argument("--iterations", type=int, default=None, help="round trips per op (default 200, quick 5)")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds per op before stopping early (at least a few samples; default 20, quick 2)")
    p.add_argument("--tempos", default="120,174", help="morph tempos in bpm (default 120,174)")
    p.add_argument("--no-torch", action="store_true", help="skip the torch eager comparison")
    p.add_argument("--no-peers", action="store_true",
                   help="skip the peers on identical weights (torch eager, @magenta/music: benchmarks/peers.py)")
    p.add_argument("--peer-models", default=None, metavar="NAMES",
                   help="comma-separated packages to run the peers on (default: all measured; magenta.js needs "
                        "minutes per call on a 16-bar model)")
    p.add_argument("--out", default=None, metavar="MD", help="markdown file to (re)write the tables in, "
                                                              "e.g. docs/performance.md")
    p.add_argument("--json", default=None, metavar="FILE", help="JSON report, e.g. benchmarks/report.json")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    quick = args.quick
    iterations = args.iterations or (5 if quick else 200)
    warmup = 1 if quick else 10
    budget = args.budget if args.budget is not None else (2.0 if quick else 10.0)
    slots = 1 if quick else 3
    tempos = tuple(float(t) for t in args.tempos.split(",") if t.strip())

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    import onnxruntime
    if args.providers:
        providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    else:
        providers = ["cpu"] + (["cuda"] if "CUDAExecutionProvider" in onnxruntime.get_available_providers() else [])
    only = {n for n in (args.model or "").split(",") if n} or None
    pkgs = packages.collect(args.models, include_shipped=not args.no_shipped, size=args.size, only=only, log=log)
    if not pkgs:
        log("no model package to measure")
        return 2
    use_torch = not args.no_torch and inprocess.torch_available()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    rep = {"generated": started, "command": "python -m benchmarks " + " ".join(shlex.quote(a) for a in
                                                                                  (argv if argv is not None else sys.argv[1:])),
           "quick": quick, "machine": machine.describe(),
           "settings": {"iterations": iterations, "warmup": warmup, "budget_s": budget, "morph_slots": slots,
                        "tempos": tempos, "providers": providers, "torch": use_torch,
                        "daemon": "python -m bridge serve --limit max_n=64 (default workers; one intra-op "
                                  "thread per model)"},
           "runs": []}
    log(f"measuring {', '.join(p.name for p in pkgs)} on {', '.join(providers)}; load now "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    t0 = time.monotonic()
    with machine.LoadMonitor() as load, tempfile.TemporaryDirectory(prefix="latent-bridge-bench-") as tmp:
        stage_dir = packages.stage(pkgs, tmp + "/models")
        for provider in providers:
            log(f"daemon, provider {provider}")
            run = daemon.bench_daemon(stage_dir, pkgs, provider, iterations, warmup, budget, slots, tempos, log=log)
            for p in pkgs:
                res = run["models"].get(p.name, {})
                if "ops" not in res:
                    continue
                log(f"  in-process {p.name} [{provider}]")
                ort = inprocess.bench_ort(stage_dir / p.name, provider, repeats=iterations // 2 or 1,
                                          warmup=warmup // 2 or 1, budget_s=budget / 2)
                tres = None
                if use_torch and provider == "cpu":
                    log(f"  torch eager {p.name}")
                    tres = inprocess.bench_torch(p.info, repeats=max(2, iterations // 10), warmup=1,
                                                 budget_s=budget / 2)
                res["inprocess"] = {"ort": ort, "torch": tres}
                res["ratios"] = inprocess.ratios(res, ort, tres)
            rep["runs"].append(run)
        why_not = "--no-peers" if args.no_peers else ("--quick" if quick else peers.peers_available())
        rep["peers"] = {"skipped": why_not} if why_not else {}
        peer_only = {n for n in (args.peer_models or "").split(",") if n} or None
        for p in pkgs if not why_not else ():
            if peer_only and p.name not in peer_only:
                continue
            try:
                rep["peers"][p.name] = peers.bench_peers(p.info, f"{tmp}/peers/{p.name}", repeats=iterations // 4 or 3,
                                                         budget_s=budget, log=log)
            except (RuntimeError, ValueError, KeyError) as e:   # an architecture magenta.js or the importer lacks
                rep["peers"][p.name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
    rep["packages"] = [p.describe() for p in pkgs]
    rep["load"] = load.summary()
    rep["duration_s"] = round(time.monotonic() - t0, 1)
    rep["targets"] = report.evaluate_targets(rep)
    for t in rep["targets"]:
        log(f"target {t['what']:<34} {t['model']:<14} {t['measured']} {t['unit']} (limit {t['limit']:g}) "
            f"{'met' if t['met'] else 'MISSED'}")
    if not rep["load"]["quiet"]:
        log(f"note: the machine was loaded (1-min load mean {rep['load']['mean_1min']} on "
            f"{rep['machine']['cores']} cores); the report says so")
    if args.json:
        report.write_json(rep, args.json)
        log(f"wrote {args.json}")
    if args.out:
        report.write_markdown(rep, args.out)
        log(f"wrote {args.out}")
    if not args.json and not args.out:
        print(report.markdown(rep))
    return 0
