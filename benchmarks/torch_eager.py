"""`python -m benchmarks.torch_eager`: the runtime's ops on onnxruntime (`python -m bridge bench`)
next to the same ops on torch eager (export_onnx.bench_torch), one table.

    python -m benchmarks.torch_eager [--models DIR] [--model mel_2bar,trio_16bar] [--repeats 50]
                                     [--threads 1,2] [--json FILE]

This comparison lived in bridge/bench.py; it is here because bridge never imports torch or
export_onnx. Torch runs on the CPU with a random-weight model of the package's config and size
(latency does not depend on the weight values).
"""
from __future__ import annotations

import argparse
import sys

from bridge.cli.bench import add_arguments, format_row, percentiles, run_bench, select_packages, split_names, \
    write_json
from bridge.runtime.package import read_manifest


def torch_rows(names=None, models_dirs=None, repeats: int = 50, threads=(1,), log=print) -> list[dict]:
    """One row per model, thread count and op, timed on torch eager."""
    from export_onnx.bench_torch import bench_ops
    rows = []
    for entry in select_packages(names, models_dirs):
        info = read_manifest(entry["path"])
        for th in threads:
            for op, times in bench_ops(info, repeats=max(5, repeats // 5), threads=th).items():
                rows.append({"model": entry["name"], "backend": "torch-cpu", "threads": th, "io_binding": None,
                             "op": op, **percentiles(times)})
                log(format_row(rows[-1]))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.torch_eager", description=__doc__.splitlines()[0])
    add_arguments(p)
    args = p.parse_args(argv)
    names, dirs = split_names(args.model), args.models or None
    threads = [int(t) for t in args.threads.split(",")]
    rows = run_bench(names=names, models_dirs=dirs, repeats=args.repeats, threads=threads)
    rows += torch_rows(names, dirs, args.repeats, threads)
    write_json(rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
