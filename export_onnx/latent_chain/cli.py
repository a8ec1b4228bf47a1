"""`python -m export_onnx chain-codes`, `train-chain` and `chain-package` (export_onnx.latent_chain).

    python -m export_onnx chain-codes --short bridge/models/mel_2bar --data data/mel_16bar \
        --out runs/mel_16bar_chain [--transpose -2,-1,0,1,2]
    python -m export_onnx train-chain --short bridge/models/mel_2bar --codes runs/mel_16bar_chain \
        --out runs/mel_16bar_chain [--steps 4000] [--free-bits 256] [--beta 0.2]
    python -m export_onnx chain-package runs/mel_16bar_chain --out bridge/models/mel_16bar

The trio over mel_2bar (lead, and the bass moved up two octaves) and drums_2bar (CHAIN_PARTS):

    python -m export_onnx chain-codes --config trio_16bar --short bridge/models/mel_2bar \
        --short bridge/models/drums_2bar --data data/trio_16bar --out runs/trio_chain --transpose -3,0,2
    python -m export_onnx train-chain --config trio_16bar --short bridge/models/mel_2bar \
        --short bridge/models/drums_2bar --codes runs/trio_chain --out runs/trio_chain
    python -m export_onnx fit-chain --config trio_16bar --short bridge/models/mel_2bar \
        --short bridge/models/drums_2bar --codes runs/trio_chain --out runs/trio_lin --part-weights 3,3,1
    python -m export_onnx chain-package runs/trio_lin --out bridge/models/trio_16bar
    python -m export_onnx chain-surrogate runs/trio_lin --out runs/trio_accomp \
        --package bridge/models/trio_16bar           # accompaniment (export_onnx.latent_chain.surrogate)
"""
from __future__ import annotations

import json

from .model import ChainSize


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def add_parser(subparsers) -> None:
    """Registers chain-codes, train-chain and chain-package with the export_onnx dispatcher."""
    p = subparsers.add_parser("chain-codes", help="encode every 2-bar segment of a long dataset with a short package")
    p.add_argument("--short", required=True, action="append",
                   help="a short (2-bar) model package; once per short model the config's chain names")
    p.add_argument("--data", required=True, help="the long config's dataset directory")
    p.add_argument("--config", default="mel_16bar")
    p.add_argument("--out", required=True, help="run directory (codes_<split>.npz, codes.json)")
    p.add_argument("--transpose", type=_ints, default=(0,), help="semitone shifts of the training windows, e.g. -2,-1,0,1,2")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads of the short encoders")
    p.set_defaults(func=_main_codes)

    t = subparsers.add_parser("train-chain", help="train a long VAE over a short model's segment codes")
    t.add_argument("--short", action="append", default=None,
                   help="short package(s) (required for a new run; default for --init-from: the recorded ones)")
    t.add_argument("--codes", required=True, help="a chain-codes directory")
    t.add_argument("--out", required=True)
    t.add_argument("--config", default="mel_16bar")
    t.add_argument("--steps", type=int, default=4000)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--free-bits", type=float, default=256.0)
    t.add_argument("--beta", type=float, default=0.2)
    t.add_argument("--floor", type=float, default=0.1, help="added to the codes' sigma in the likelihood")
    t.add_argument("--code-noise", type=float, default=0.0,
                   help="the encoder reads codes drawn from N(mu, (k * sigma)^2) in training (augmentation)")
    t.add_argument("--part-weights", type=lambda x: tuple(float(v) for v in x.split(",")), default=None,
                   help="one factor per part on its codes' likelihood, e.g. 3,3,1 (trio: lead, bass, drums)")
    t.add_argument("--z-size", type=int, default=ChainSize.z_size)
    t.add_argument("--enc-units", type=int, default=ChainSize.enc_units)
    t.add_argument("--cond-units", type=int, default=ChainSize.cond_units)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--validate-every", type=int, default=500)
    t.add_argument("--init-from", default=None, help="a train-chain run to continue (its size; steps count on)")
    t.set_defaults(func=_main_train)

    f = subparsers.add_parser("fit-chain", help="fit a linear chain (weighted PCA of the codes) in closed form")
    f.add_argument("--short", required=True, action="append")
    f.add_argument("--codes", required=True, help="a chain-codes directory")
    f.add_argument("--out", required=True)
    f.add_argument("--config", default="trio_16bar")
    f.add_argument("--z-size", type=int, default=256)
    f.add_argument("--floor", type=float, default=0.1)
    f.add_argument("--part-weights", type=lambda x: tuple(float(v) for v in x.split(",")), default=None)
    f.set_defaults(func=_main_fit)

    k = subparsers.add_parser("chain-package", help="write a trained chain as a model package")
    k.add_argument("run")
    k.add_argument("--out", required=True)
    k.add_argument("--name", default=None)
    k.add_argument("--weights", default="fp16", choices=["fp32", "fp16"])
    k.add_argument("--short", action="append", default=None, help="default: the packages recorded in the run")
    k.add_argument("--data", default=None, help="dataset for the knobs' directions (default: the codes' dataset)")
    k.add_argument("--no-directions", action="store_true", help="no attribute vectors / principal directions")
    k.set_defaults(func=_main_package)

    a = subparsers.add_parser("chain-surrogate", help="train a trio chain's accompaniment encoder (lead codes -> z)")
    a.add_argument("run", help="the trio train-chain run (its codes and chain.pt)")
    a.add_argument("--out", required=True)
    a.add_argument("--steps", type=int, default=3000)
    a.add_argument("--batch-size", type=int, default=128)
    a.add_argument("--lr", type=float, default=1e-3)
    a.add_argument("--loss", default="nll", choices=["nll", "mse", "codes"],
                   help="nll/mse: match the chain posterior; codes: score the codes the conductor makes of z")
    a.add_argument("--units", type=int, default=None, help="the surrogate BiLSTM's units (default: the chain encoder's, or 128)")
    a.add_argument("--threads", type=int, default=1)
    a.add_argument("--package", default=None, help="a chain-package of the run to add the surrogate to")
    a.set_defaults(func=_main_surrogate)


def _main_codes(args) -> int:
    from .training import write_codes
    print(json.dumps(write_codes(args.short, args.data, args.config, args.out, args.transpose, args.threads), indent=1))
    return 0


def _main_train(args) -> int:
    from .training import train_chain
    if args.short is None and args.init_from is None:
        raise SystemExit("train-chain: --short is required for a new run")
    size = ChainSize(z_size=args.z_size, enc_units=args.enc_units, cond_units=args.cond_units)
    train_chain(args.short, args.codes, args.out, args.config, size, steps=args.steps, batch_size=args.batch_size,
                learning_rate=args.lr, free_bits=args.free_bits, beta=args.beta, floor=args.floor,
                seed=args.seed, threads=args.threads, validate_every=args.validate_every, init_from=args.init_from,
                code_noise=args.code_noise, part_weights=args.part_weights)
    return 0


def _main_package(args) -> int:
    from .training import write_chain_package
    info = write_chain_package(args.run, args.out, name=args.name, weights=args.weights, shorts=args.short,
                               data_dir=args.data, directions=not args.no_directions)
    print(f"wrote {args.out}: {info['name']} ({info['training']['architecture']}, step {info['training']['step']})")
    return 0


def _main_surrogate(args) -> int:
    from .surrogate import add_chain_surrogate, train_chain_surrogate
    saved = train_chain_surrogate(args.run, args.out, steps=args.steps, batch_size=args.batch_size,
                                  learning_rate=args.lr, loss=args.loss, units=args.units, threads=args.threads)
    print(json.dumps(saved, indent=1))
    if args.package:
        add_chain_surrogate(args.out, args.package, chain_run=args.run)
        print(f"added the surrogate to {args.package}")
    return 0


def _main_fit(args) -> int:
    from .linear import fit_linear_chain
    fit_linear_chain(args.short, args.codes, args.out, args.config, z_size=args.z_size, floor=args.floor,
                     part_weights=args.part_weights)
    return 0
