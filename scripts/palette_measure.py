"""Do palettes keep a player's style? Palette samples vs prior samples, per held-out song.

    .venv/bin/python scripts/palette_measure.py --out docs/models/palettes

For each model (mel_2bar on POP909/Nottingham test songs, drums_2bar on Groove test performances):
take one held-out song's windows (the audit's cache, export_onnx.audit), learn a palette from the
first half of them (the "learning clips", each 2-bar window a clip), then draw `--samples` sequences
from the palette (spread 1) and as many from N(0, I), both at T = 0.5, and compare with the learning
clips:
- latent distance: every decoded sample is encoded again (what it *sounds* like, in the model's
  z space) and its distance to the centroid of the learning clips' z, and to the nearest learning
  clip's z, is averaged;
- musical statistics (export_onnx.audit.track_stats): |statistic(samples) - statistic(clips)|.
Writes OUT.json (every number) and OUT.png (piano rolls: clips, palette samples, prior samples).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import bridge
from bridge.io.pianoroll import save_pianoroll_png
from bridge.runtime.palette import learn_palette
from export_onnx.audit import DATA_ROOT, load_test_windows, package_sources, track_stats

STATS = {"melody": ("notes_per_bar", "range_mean", "in_key", "leaps"),
         "drums": ("hits_per_bar", "kick_on_one", "backbeat", "walls")}


def measure_song(model, tokens: np.ndarray, n_samples: int, seed: int) -> dict:
    half = tokens[: max(3, len(tokens) // 2)][:64]
    clips = model.tokens_to_notes(half)
    t0 = time.perf_counter()
    palette = learn_palette(model, clips, "song")
    learn_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    pal_tok = model.decode_tokens(palette.sample(n_samples, 1.0, rng), 0.5, rng)
    prior = model.prior_model            # what `sample` plays: the package's sampler when it ships a pair
    prior_tok = prior.decode_tokens(prior.sample_z(n_samples, rng), 0.5, rng)
    clip_z = model.encode_tokens(half)
    centroid = clip_z.mean(0)
    kind = "drums" if model.kind == "drums" else "melody"
    out = {"windows": int(palette.windows), "learn_s": round(learn_s, 3),
           "explained": palette.info.get("explained")}
    ref = track_stats(half[..., 0], kind)
    for label, tok in (("palette", pal_tok), ("prior", prior_tok)):
        z = model.encode_tokens(tok)
        out[f"{label}_latent_distance"] = float(np.linalg.norm(z - centroid, axis=1).mean())
        nearest = np.linalg.norm(z[:, None, :] - clip_z[None, :, :], axis=2).min(1)
        out[f"{label}_nearest_clip_distance"] = float(nearest.mean())
        st = track_stats(tok[..., 0], kind)
        for k in STATS[kind]:
            out[f"{label}_{k}"] = st[k]
            out[f"{label}_{k}_gap"] = None if st[k] is None or ref[k] is None else abs(st[k] - ref[k])
    for k in STATS[kind]:
        out[f"clips_{k}"] = ref[k]
    out["_pictures"] = (half[:3], pal_tok[:3], prior_tok[:3])
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mel_2bar,drums_2bar")
    p.add_argument("--songs", type=int, default=5, help="held-out songs per model (the ones with most windows)")
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    result, pictures = {}, []
    for name in args.models.split(","):
        model = bridge.load_model(name)
        data = load_test_windows(name, [DATA_ROOT / label for label in package_sources(model.path, name)])
        songs, counts = np.unique(data["song"], return_counts=True)
        picked = songs[np.argsort(-counts, kind="stable")][: args.songs]
        rows = []
        for s in picked:
            idx = np.flatnonzero(data["song"] == s)
            idx = idx[np.argsort(data["start_bar"][idx], kind="stable")]
            r = measure_song(model, data["tokens"][idx], args.samples, seed=int(s))
            r["song"] = str(data["songs"][s]) if "songs" in data else int(s)
            pics = r.pop("_pictures")
            if not pictures or pictures[-1][0] != name:
                pictures.append((name, pics))
            rows.append(r)
        kind = "drums" if model.kind == "drums" else "melody"
        summary = {"latent_distance_ratio_prior_over_palette": float(np.mean(
            [r["prior_latent_distance"] / r["palette_latent_distance"] for r in rows])),
                   "nearest_clip_distance_ratio_prior_over_palette": float(np.mean(
            [r["prior_nearest_clip_distance"] / r["palette_nearest_clip_distance"] for r in rows]))}
        for k in STATS[kind]:
            gaps = [(r[f"palette_{k}_gap"], r[f"prior_{k}_gap"]) for r in rows
                    if r[f"palette_{k}_gap"] is not None and r[f"prior_{k}_gap"] is not None]
            summary[f"{k}_gap_palette"] = float(np.mean([g[0] for g in gaps])) if gaps else None
            summary[f"{k}_gap_prior"] = float(np.mean([g[1] for g in gaps])) if gaps else None
            summary[f"{k}_palette_closer_songs"] = int(sum(g[0] < g[1] for g in gaps))
        summary["songs"] = len(rows)
        summary["learn_s_max"] = max(r["learn_s"] for r in rows)
        result[name] = {"summary": summary, "songs": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    seqs, titles = [], []
    for name, (clips, pal, prior) in pictures:
        model = bridge.load_model(name)
        for label, tok in (("learning clip", clips), ("palette sample", pal), ("prior sample", prior)):
            for i, notes in enumerate(model.tokens_to_notes(tok[:2])):
                seqs.append(notes)
                titles.append(f"{name}: {label} {i + 1}")
    save_pianoroll_png(seqs, out.with_suffix(".png"), titles=titles)
    print(json.dumps({k: v["summary"] for k, v in result.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
