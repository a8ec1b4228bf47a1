"""`python -m export_onnx train-surrogate` and `add-surrogate`.

A trio model's encoder needs the whole trio; a surrogate encoder predicts the same latent from the
lead track alone, so that a melody can be accompanied: predict z, decode a trio, put the melody back
(bridge/runtime/accompany.py). train-surrogate trains one against a trio run; add-surrogate adds it
to the trio's package as surrogate_encoder.onnx (export_onnx.surrogate describes the method).

    python -m export_onnx train-surrogate --trio runs/trio_16bar --data data/trio_16bar \
        --out runs/trio_accomp [--loss mse|nll] [--max-steps N] [--package bridge/models/trio_16bar]
    python -m export_onnx add-surrogate runs/trio_accomp --package bridge/models/trio_16bar
"""
from __future__ import annotations

import json

from .encoder import LOSSES
from .graph import GRAPH_FILE
from .package import add_surrogate_to_package
from .training import train_surrogate


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
