"""`python -m export_onnx chain-codes`, `train-chain` and `chain-package` (export_onnx.latent_chain).

    python -m export_onnx chain-codes --short bridge/models/mel_2bar --data data/mel_16bar \
        --out runs/mel_16bar_chain [--transpose -2,-1,0,1,2]
    python -m export_onnx train-chain --short bridge/models/mel_2bar --codes runs/mel_16bar_chain \
        --out runs/mel_16bar_chain [--steps 4000] [--free-bits 256] [--beta 0.2]
    python -m export_onnx chain-package runs/mel_16bar_chain --out bridge/models/mel_16bar
"""
from __future__ import annotations

import json

from .model import ChainSize


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def add_parser(subparsers) -> None:
    """Registers chain-codes, train-chain and chain-package with the export_onnx dispatcher."""
    p = subparsers.add_parser("chain-codes", help="encode every 2-bar segment of a long dataset with a short package")
    p.add_argument("--short", required=True, help="the short (2-bar) model package")
    p.add_argument("--data", required=True, help="the long config's dataset directory")
    p.add_argument("--config", default="mel_16bar")
    p.add_argument("--out", required=True, help="run directory (codes_<split>.npz, codes.json)")
    p.add_argument("--transpose", type=_ints, default=(0,), help="semitone shifts of the training windows, e.g. -2,-1,0,1,2")
    p.set_defaults(func=_main_codes)

    t = subparsers.add_parser("train-chain", help="train a long VAE over a short model's segment codes")
    t.add_argument("--short", required=True)
    t.add_argument("--codes", required=True, help="a chain-codes directory")
    t.add_argument("--out", required=True)
    t.add_argument("--config", default="mel_16bar")
    t.add_argument("--steps", type=int, default=4000)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--free-bits", type=float, default=256.0)
    t.add_argument("--beta", type=float, default=0.2)
    t.add_argument("--floor", type=float, default=0.1, help="added to the codes' sigma in the likelihood")
    t.add_argument("--z-size", type=int, default=ChainSize.z_size)
    t.add_argument("--enc-units", type=int, default=ChainSize.enc_units)
    t.add_argument("--cond-units", type=int, default=ChainSize.cond_units)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--validate-every", type=int, default=500)
    t.add_argument("--init-from", default=None, help="a train-chain run to continue (its size; steps count on)")
    t.set_defaults(func=_main_train)

    k = subparsers.add_parser("chain-package", help="write a trained chain as a model package")
    k.add_argument("run")
    k.add_argument("--out", required=True)
    k.add_argument("--name", default=None)
    k.add_argument("--weights", default="fp16", choices=["fp32", "fp16"])
    k.add_argument("--short", default=None, help="default: the package recorded in the run")
    k.add_argument("--data", default=None, help="dataset for the knobs' directions (default: the codes' dataset)")
    k.add_argument("--no-directions", action="store_true", help="no attribute vectors / principal directions")
    k.set_defaults(func=_main_package)


def _main_codes(args) -> int:
    from .training import write_codes
    print(json.dumps(write_codes(args.short, args.data, args.config, args.out, args.transpose), indent=1))
    return 0


def _main_train(args) -> int:
    from .training import train_chain
    size = ChainSize(z_size=args.z_size, enc_units=args.enc_units, cond_units=args.cond_units)
    train_chain(args.short, args.codes, args.out, args.config, size, steps=args.steps, batch_size=args.batch_size,
                learning_rate=args.lr, free_bits=args.free_bits, beta=args.beta, floor=args.floor,
                seed=args.seed, threads=args.threads, validate_every=args.validate_every, init_from=args.init_from)
    return 0


def _main_package(args) -> int:
    from .training import write_chain_package
    info = write_chain_package(args.run, args.out, name=args.name, weights=args.weights, short_package=args.short,
                               data_dir=args.data, directions=not args.no_directions)
    print(f"wrote {args.out}: {info['name']} ({info['training']['architecture']}, step {info['training']['step']})")
    return 0
