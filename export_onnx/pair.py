"""`python -m export_onnx add-sampler bridge/models/<name> --from <package>`: ship a pair.

    python -m export_onnx add-sampler bridge/models/mel_2bar --from /tmp/mel_2bar_lokl \
        --why "free bits 48, beta 0.35: prior samples in key"

MusicVAE's reconstruction and its prior samples pull against each other: a model allowed many bits
of KL (high-KL) reconstructs and interpolates faithfully, but N(0, I) is then a poor map of where
its data lies, and its prior samples wander; a low-KL model samples well and reconstructs worse.
Magenta ships both (its `lokl` / `hikl` checkpoints). Here a package (the high-KL one: every op
that encodes uses it) carries the low-KL package whole in `sampler/`, and `sample` — the only op that
starts from N(0, I) — decodes with it (bridge.runtime.package.sampler_entry, Model.prior_model).

The source package is copied as it is (its graphs, int8 step, card and audit.json — audit the source
first — sealed by its own manifest,
renamed `<name>.sampler`); the package's model.json gets the `sampler` section with the sha256 of
the copied manifest, and its card a "## Prior sampler (a pair)" section. Re-runnable: a package that
has a sampler gets it replaced. Refused (nothing changed): a source of another kind or shape, or a
pair over `--max-mb` (15 MB). Run `audit` afterwards: its prior-sample statistics then come from
the sampler.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bridge.runtime import package as P

from .model_card import SAMPLER_HEADING, with_section

MAX_MB = 15.0


def _bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def add_sampler(package_dir, source_dir, why: str = "", max_mb: float = MAX_MB) -> dict:
    """Copy the package at `source_dir` into `package_dir/sampler/` and record it in the manifest.

    Returns:
        The package's `sampler` section.
    Raises:
        ModelError: either package is broken. ValueError: the source differs in kind or shape
        (bridge.runtime.package.SAMPLER_FIELDS), is the package itself, the package has a fitted
        prior, or the pair is over max_mb.
    """
    pkg, src = Path(package_dir), Path(source_dir)
    info = P.read_manifest(pkg)
    sub = P.read_manifest(src)
    P.verify_files(src, sub)
    if src.resolve() == pkg.resolve() or src.resolve() == (pkg / P.SAMPLER_DIR).resolve():
        raise ValueError("the sampler must be another package")
    if info.get("prior") is not None:     # bridge.runtime.prior.PRIOR_KEY: the runtime loads one or the other
        raise ValueError(f"{pkg} samples from a fitted prior (fit-prior); a package has a sampler or a prior, "
                         "not both: export it again without the prior first")
    diff = [k for k in P.SAMPLER_FIELDS if sub.get(k) != info.get(k)]
    if diff:
        raise ValueError(f"{src} differs from {pkg} in {', '.join(diff)}: a sampler must write the same notes")
    tmp = pkg / f".{P.SAMPLER_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name in [*sub["files"], "MODEL_CARD.md", "audit.json"]:     # its card and audit travel with it
            if (src / name).is_file():
                shutil.copy2(src / name, tmp / name)
        sub["name"] = f"{info['name']}.sampler"
        P.write_manifest(tmp, sub)
        old = pkg / P.SAMPLER_DIR
        total = _bytes(pkg) - (_bytes(old) if old.is_dir() else 0)
        if total > max_mb * 1e6:
            raise ValueError(f"the pair would be {total / 1e6:.1f} MB, over {max_mb:g} MB")
        shutil.rmtree(old, ignore_errors=True)
        tmp.rename(old)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    entry = {"dir": P.SAMPLER_DIR, "name": sub["name"], "sha256": P.sha256_file(old / P.MANIFEST),
             "why": why, "mb": round(total / 1e6, 2)}
    card = pkg / "MODEL_CARD.md"
    files = []
    if card.is_file():
        card.write_text(with_section(card.read_text(), sampler_section(entry, sub)))
        files.append(card.name)
    P.update_manifest(pkg, lambda i: i.__setitem__(P.SAMPLER_KEY, entry), files=files)
    return entry


def sampler_section(entry: dict, sub: dict) -> str:
    """The card's section on the pair: which op uses which model, and why."""
    trained = sub.get("training") or {}
    lines = [SAMPLER_HEADING, "",
             "This package is a pair. `sample` (prior samples, N(0, I)) decodes with the low-KL model in "
             f"`{entry['dir']}/` ({entry['name']}); every op that encodes — reconstruct, interpolate, "
             "morph, the knobs, variations, attribute, palettes (learn, and sample with a palette) — "
             "uses this package. Reconstruction and prior sampling pull against each other (Magenta "
             "ships lokl / hikl checkpoints for the same reason); the musical audit above measures "
             "reconstructions with this package and prior samples with the sampler."]
    if entry.get("why"):
        lines += ["", f"Sampler: {entry['why']}"]
    if trained:
        lines += ["", "Sampler training: " + ", ".join(f"{k} {v}" for k, v in sorted(trained.items())
                                                       if isinstance(v, (int, float, str)))]
    lines += ["", f"Package with its sampler: {entry['mb']} MB."]
    return "\n".join(lines) + "\n"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("add-sampler", help="ship a low-KL package as the prior sampler of a high-KL one",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("package", help="the package (its encoder and decoder serve every op but sample)")
    p.add_argument("--from", dest="source", required=True, help="the package `sample` decodes with")
    p.add_argument("--why", default="", help="a line for the card: how the sampler was trained, what it is for")
    p.add_argument("--max-mb", type=float, default=MAX_MB, help="refuse a pair over this size (default 15)")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    entry = add_sampler(args.package, args.source, args.why, args.max_mb)
    print(f"{args.package}: sampler {entry['name']} in {entry['dir']}/ ({entry['mb']} MB with it)")
    return 0
