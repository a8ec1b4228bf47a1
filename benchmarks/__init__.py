"""End-to-end benchmarks of the latent-bridge daemon (issue 11, "Measure it").

    python -m benchmarks [--models DIR] [--quick] [--out docs/performance.md] [--json benchmarks/report.json]

Starts a real `python -m bridge serve` subprocess per provider and measures over loopback OSC what a
client sees: round trips (p50/p95/p99) of ping, encode, sample, interpolate (8 steps) and knob, the
morph lookahead margin at 120 and 174 bpm, and batch scaling (1, 8, 64 sequences). The same ops run
in this process on onnxruntime (bridge.cli.bench) and on torch eager (export_onnx.bench_torch) for the
ratios. Without --models it benches random-weight packages of the configs' "small" sizes (random
weights cost exactly what trained ones do) plus any shipped package in bridge/models/.

Modules: packages (building / finding the packages), machine (what the numbers were taken on),
daemon (the OSC measurements), inprocess (onnxruntime and torch eager in this process), report
(targets, JSON, markdown), runner (the command line).
"""
