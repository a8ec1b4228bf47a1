"""Training datasets: MIDI folders -> unique token windows in song-level splits.

    python -m export_onnx dataset --config mel_2bar --midi-dir ../shared/data/pop909 \
        --midi-dir ../shared/data/nottingham --out data/mel_2bar

Source kinds are recognised from the folder (see `detect_source`):
- groove: `info.csv` gives the official split and beat/fill per performance; drums only.
- pop909: `NNN/NNN.mid`; tracks MELODY and BRIDGE. Its MIDI time signatures are placeholders
  (most say 1/4), so the song's `beat_midi.txt` annotation is the grid: its beats and its 4-beat
  downbeats; windows are only taken where the annotated bars are 4 beats long.
- nottingham: top-level `*.mid` only (`melody/` and `chords/` repeat the same tunes split in two).
- lmd: Lakh files named `*.midN`; all versions of a song share a song id (name without `.midN` and
  without the album track number), so they land in the same split.
- generic: every `*.mid` / `*.midi` below the folder, one song per file.

Output (`--out`): `{train,validation,test}.npz` with `tokens` uint16 (N, steps, tracks), `song` int32
(index into summary["songs"]), `start_bar` int32 (bar of the song where the window starts), and for
Groove `beat_type` int8 (0 beat, 1 fill, -1 for examples from other sources); `summary.json`.

With `--shard-size N` (large sets) every split is written while the files are read, as shards of N
examples: `<split>-00000.tokens.npy`, `<split>-00000.song.npy`, ... (plain .npy, memory-mappable) and,
last, the index `<split>.shards.json`. `load_split(dir, split, mmap=True)` then gives `ShardedArray`s
that read only the rows asked for (the trainer: each process reads its slice of each batch). The
window dedupe keeps 8 bytes per distinct window (`WindowIndex`) instead of the windows themselves.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from bridge.core import windows
from bridge.core.windows import WindowStats
from bridge.io import midi_io

from .configs import ModelConfig, get_config

SPLITS = ("train", "validation", "test")


# ---- loading and augmentation (the trainer's entry points) -----------------------------------

def load_split(data_dir, split: str, mmap: bool = False) -> dict:
    """Every array of a split as a dict (tokens uint16 (N, steps, tracks), song, ...): from
    `<data_dir>/<split>.npz`, or from its shards (`<split>.shards.json`, a `--shard-size` build), read
    whole, or with `mmap` as `ShardedArray`s that read only the rows indexed (npz sets are always read
    whole)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    path = Path(data_dir) / f"{split}.npz"
    index = Path(data_dir) / f"{split}.shards.json"
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    if index.exists():
        arrays = open_shards(index)
        return arrays if mmap else {k: np.asarray(v) for k, v in arrays.items()}
    raise FileNotFoundError(f"{path} not found; build it with `python -m export_onnx dataset`")


# ---- shards (`dataset --shard-size`) -----------------------------------------------------------

SHARD_FORMAT = "latent-bridge-shards"


class ShardedArray:
    """Rows of memory-mapped .npy shards read as one array: len, shape, dtype, int / slice /
    integer-array indexing (a copy of only those rows), and np.asarray (everything, concatenated)."""

    def __init__(self, paths: list, dtype, row_shape: tuple):
        self.parts = [np.load(p, mmap_mode="r") for p in paths]
        self.dtype, self.row_shape = np.dtype(dtype), tuple(row_shape)
        for p, a in zip(paths, self.parts):
            if a.dtype != self.dtype or a.shape[1:] != self.row_shape:
                raise ValueError(f"{p}: {a.dtype} {a.shape[1:]}, expected {self.dtype} {self.row_shape}")
        self.offsets = np.concatenate([[0], np.cumsum([len(a) for a in self.parts])]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def shape(self) -> tuple:
        return (len(self),) + self.row_shape

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    def __getitem__(self, key):
        n = len(self)
        if isinstance(key, (int, np.integer)):
            return self[np.array([key])][0]
        if isinstance(key, slice):
            key = np.arange(*key.indices(n))
        idx = np.asarray(key)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1)
        idx = np.where(idx < 0, idx + n, idx)
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"index out of range for {n} rows")
        out = np.empty((len(idx),) + self.row_shape, self.dtype)
        shard = np.searchsorted(self.offsets, idx, side="right") - 1
        for s in np.unique(shard).tolist():
            m = shard == s
            out[m] = self.parts[s][idx[m] - self.offsets[s]]
        return out

    def __array__(self, dtype=None, copy=None):
        whole = (np.concatenate([np.asarray(a) for a in self.parts]) if self.parts
                 else np.zeros((0,) + self.row_shape, self.dtype))
        return whole if dtype is None else whole.astype(dtype)


def open_shards(index_path) -> dict:
    """The arrays of a sharded split as `ShardedArray`s (memory-mapped, nothing read yet)."""
    index_path = Path(index_path)
    info = json.loads(index_path.read_text())
    if info.get("format") != SHARD_FORMAT:
        raise ValueError(f"{index_path} is not a {SHARD_FORMAT} index")
    d = index_path.parent
    return {name: ShardedArray([d / f"{sh['name']}.{name}.npy" for sh in info["shards"]], a["dtype"], a["shape"])
            for name, a in info["arrays"].items()}


class SplitWriter:
    """One split's output, filled file by file. shard_size None: kept in memory and written as
    `<split>.npz` at close (the small-set format). shard_size N: each time N examples are buffered
    they go to disk as shard `<split>-NNNNN` (one .npy per array), and close() writes the rest and the
    index `<split>.shards.json` (so an interrupted build leaves no index); memory stays at one shard."""

    def __init__(self, out_dir, split: str, arrays: dict, shard_size: int | None = None):
        if shard_size is not None and shard_size < 1:
            raise ValueError(f"shard size must be >= 1, got {shard_size}")
        self.out, self.split, self.shard_size = Path(out_dir), split, shard_size
        self.arrays = {k: (np.dtype(dt), tuple(shape)) for k, (dt, shape) in arrays.items()}
        self.buf = {k: [] for k in self.arrays}
        self.buffered, self.examples, self.shards = 0, 0, []
        self.out.mkdir(parents=True, exist_ok=True)
        if shard_size is not None:   # nothing of an earlier build of this split may be mistaken for ours
            self._remove_shards()

    def _remove_shards(self) -> None:
        (self.out / f"{self.split}.shards.json").unlink(missing_ok=True)
        for f in self.out.glob(f"{self.split}-[0-9][0-9][0-9][0-9][0-9]*.npy"):
            f.unlink()

    def add(self, **arrays) -> None:
        n = len(arrays["tokens"])
        for k, (dt, _) in self.arrays.items():
            a = np.asarray(arrays[k], dt)
            if len(a) != n:
                raise ValueError(f"{k}: {len(a)} rows, tokens have {n}")
            self.buf[k].append(a)
        self.buffered += n
        self.examples += n
        while self.shard_size is not None and self.buffered >= self.shard_size:
            self._write_shard(self.shard_size)

    def _take(self, n: int) -> dict:
        out = {}
        for k, parts in self.buf.items():
            whole = np.concatenate(parts) if parts else np.zeros((0,) + self.arrays[k][1], self.arrays[k][0])
            out[k], rest = whole[:n], whole[n:]
            self.buf[k] = [rest] if len(rest) else []
        self.buffered -= min(n, self.buffered)
        return out

    def _write_shard(self, n: int) -> None:
        name = f"{self.split}-{len(self.shards):05d}"
        rows = self._take(n)
        for k, a in rows.items():
            tmp = self.out / f"{name}.{k}.tmp.npy"
            np.save(tmp, np.ascontiguousarray(a))
            os.replace(tmp, self.out / f"{name}.{k}.npy")
        self.shards.append({"name": name, "examples": int(len(rows["tokens"]))})

    def close(self) -> None:
        if self.shard_size is None:
            np.savez_compressed(self.out / f"{self.split}.npz", **self._take(self.buffered))
            self._remove_shards()
            return
        if self.buffered:
            self._write_shard(self.buffered)
        index = {"format": SHARD_FORMAT, "version": 1, "split": self.split, "examples": self.examples,
                 "shard_size": self.shard_size, "shards": self.shards,
                 "arrays": {k: {"dtype": dt.name, "shape": list(shape)} for k, (dt, shape) in self.arrays.items()}}
        tmp = self.out / f"{self.split}.shards.tmp.json"
        tmp.write_text(json.dumps(index, indent=1))
        os.replace(tmp, self.out / f"{self.split}.shards.json")
        (self.out / f"{self.split}.npz").unlink(missing_ok=True)


class WindowIndex:
    """The distinct windows seen so far as 64-bit BLAKE2b digests, 8 bytes each: sorted runs merged
    as they grow (log n runs) plus a small set of recent ones. What a `--shard-size` build dedupes
    with; a Python set of the windows' bytes costs ~100-200 bytes per window. A digest collision
    (p ~ n^2 / 2^65: 1e-4 at 75 M windows) would drop one window as a duplicate."""

    def __init__(self, pending: int = 1 << 15):
        self.runs: list[np.ndarray] = []
        self.pending: set[int] = set()
        self.pending_limit = pending

    @staticmethod
    def digests(tokens: np.ndarray) -> np.ndarray:
        return np.array([int.from_bytes(hashlib.blake2b(t.tobytes(), digest_size=8).digest(), "little")
                         for t in tokens], dtype=np.uint64)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        keys = np.asarray(keys, np.uint64)
        hit = np.zeros(len(keys), bool)
        for run in self.runs:
            pos = np.minimum(np.searchsorted(run, keys), len(run) - 1)
            hit |= run[pos] == keys
        if self.pending:
            hit |= np.array([k in self.pending for k in keys.tolist()], bool)
        return hit

    def unique(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Like `windows.unique_windows(tokens, seen)`: (first occurrences not seen before, their indices)."""
        keys = self.digests(tokens)
        known = self.contains(keys)
        idx = []
        for i, k in enumerate(keys.tolist()):
            if not known[i] and k not in self.pending:
                self.pending.add(k)
                idx.append(i)
        if len(self.pending) >= self.pending_limit:
            self._flush()
        idx = np.array(idx, dtype=np.int64)
        return tokens[idx], idx

    def _flush(self) -> None:
        if not self.pending:
            return
        run = np.sort(np.fromiter(self.pending, np.uint64, len(self.pending)))
        self.pending = set()
        while self.runs and len(self.runs[-1]) <= 2 * len(run):
            run = np.concatenate([self.runs.pop(), run])
            run.sort(kind="stable")   # two sorted runs: a merge, in place
        self.runs.append(run)

    def keys(self) -> np.ndarray:
        self._flush()
        return np.concatenate(self.runs) if self.runs else np.zeros(0, np.uint64)

    def __len__(self) -> int:
        return sum(len(r) for r in self.runs) + len(self.pending)


def augment(tokens_batch, codec, rng, low: int = -5, high: int = 6) -> np.ndarray:
    """Transpose every example by its own random shift in [low, high) semitones (high excluded).

    Examples that would leave the codec range stay as they are; drums are never shifted. Returns a
    new array of the input's dtype.
    """
    tokens_batch = np.asarray(tokens_batch)
    out = tokens_batch.copy()
    wide = tokens_batch.astype(np.int64)   # unsigned tokens would wrap below zero
    shifts = rng.integers(low, high, size=len(tokens_batch))
    for i, s in enumerate(shifts.tolist()):
        if s == 0:
            continue
        moved = codec.transpose(wide[i], s)
        if moved is not None:
            out[i] = moved
    return out


# ---- sources and splits ------------------------------------------------------------------------

@dataclass
class FileJob:
    path: str
    source: str        # source folder label (its name)
    kind: str          # groove | pop909 | nottingham | lmd | generic
    song_id: str
    split: str
    beat_type: int = -1


def detect_source(midi_dir) -> str:
    d = Path(midi_dir)
    name = d.name.lower()
    info = d / "info.csv"
    if info.exists() and "beat_type" in info.read_text(errors="replace").splitlines()[0]:
        return "groove"
    if "pop909" in name or any(p.is_dir() and re.fullmatch(r"\d{3}", p.name) and (p / f"{p.name}.mid").exists()
                               for p in list(d.iterdir())[:20]):
        return "pop909"
    if "nottingham" in name:
        return "nottingham"
    if "lmd" in name or any(re.search(r"\.mid\d+$", f) for _, _, fs in os.walk(d) for f in fs[:5]):
        return "lmd"
    return "generic"


def hash_split(song_id: str) -> str:
    """80/10/10 by a stable hash of the song id (same answer on every machine and Python run)."""
    h = int(hashlib.sha1(song_id.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "train" if h < 80 else "validation" if h < 90 else "test"


def lmd_song_name(filename: str) -> str:
    stem = re.sub(r"\.mid\d*$", "", filename)
    return re.sub(r"^\d+_-_", "", stem).lower()


def list_jobs(midi_dir) -> tuple[str, list[FileJob]]:
    d = Path(midi_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"MIDI folder {d} not found")
    kind, label = detect_source(d), d.name
    jobs = []
    if kind == "groove":
        with open(d / "info.csv", newline="") as f:
            for row in csv.DictReader(f):
                sid = f"{label}:{row['id']}"
                jobs.append(FileJob(str(d / row["midi_filename"]), label, kind, sid, row["split"],
                                    1 if row["beat_type"] == "fill" else 0))
    elif kind == "pop909":
        for p in sorted(d.iterdir()):
            if p.is_dir() and (p / f"{p.name}.mid").exists():
                sid = f"{label}:{p.name}"
                jobs.append(FileJob(str(p / f"{p.name}.mid"), label, kind, sid, hash_split(sid)))
    elif kind == "nottingham":
        for p in sorted(d.glob("*.mid")):
            sid = f"{label}:{p.stem}"
            jobs.append(FileJob(str(p), label, kind, sid, hash_split(sid)))
    else:
        pattern = re.compile(r"\.(mid\d*|midi)$", re.IGNORECASE)
        for p in sorted(q for q in d.rglob("*") if q.is_file() and pattern.search(q.name)):
            if kind == "lmd":
                sid = f"{label}:{lmd_song_name(p.name)}"
            else:
                sid = f"{label}:{p.relative_to(d).with_suffix('').as_posix()}"
            jobs.append(FileJob(str(p), label, kind, sid, hash_split(sid)))
    for j in jobs:
        if j.split not in SPLITS:
            raise ValueError(f"{j.path}: unknown split {j.split!r}")
    return kind, jobs


def spread(jobs: list, limit: int | None) -> list:
    """`limit` jobs evenly spread over the sorted list, so a small slice still touches every split."""
    if not limit or limit >= len(jobs):
        return jobs
    idx = np.linspace(0, len(jobs) - 1, limit).round().astype(int)
    return [jobs[i] for i in sorted(set(idx.tolist()))]


# ---- one file ----------------------------------------------------------------------------------

def read_job(job: FileJob) -> midi_io.QuantizedMidi:
    if job.kind == "pop909":
        return midi_io.read_annotated_midi(job.path)
    return midi_io.read_midi(job.path)


def track_choices(midi, config: ModelConfig, kind: str) -> list[list]:
    """Every combination of note lists (one per codec track) that the config takes from a file."""
    if config.kind == "melody":
        insts = windows.melody_instruments(midi.instruments, kind)
        if not insts:
            raise midi_io.MidiError(f"{midi.path}: no melody instrument", "no_melody")
        return [[i.notes] for i in insts]
    if config.kind == "drums":
        notes = windows.drum_notes(midi.instruments)
        if not notes:
            raise midi_io.MidiError(f"{midi.path}: no drum instrument (channel 10)", "no_drums")
        return [[notes]]
    leads, basses, drums = windows.trio_candidates(midi.instruments)
    missing = [r for r, c in (("lead", leads), ("bass", basses), ("drums", drums)) if not c]
    if missing:
        raise midi_io.MidiError(f"{midi.path}: no {'/'.join(missing)} instrument", "no_" + "_".join(missing))
    return [[lead.notes, bass.notes, drums] for lead in leads for bass in basses]


def process_file(args) -> dict:
    """Worker: windows of one file, or the reason it was skipped. Never raises."""
    job, config_name = args
    config = get_config(config_name)
    try:
        midi = read_job(job)
        choices = track_choices(midi, config, job.kind)
        stats, cache = WindowStats(), {}
        toks, bars = [], []
        for tracks in choices:
            t, b = windows.extract_windows(tracks, config.codec, config.bars, midi.downbeats, midi.num_steps,
                                           stats=stats, _cache=cache)
            toks.append(t)
            bars.append(b)
        tokens = np.concatenate(toks)
        tokens, idx = windows.unique_windows(tokens)   # the same window from two instruments
        stats.add("duplicates", sum(len(t) for t in toks) - len(idx))
        stats.add("kept", len(idx) - sum(len(t) for t in toks))
        return {"ok": True, "tokens": tokens, "start_bar": np.concatenate(bars)[idx], "stats": dict(stats),
                "choices": len(choices)}
    except midi_io.MidiError as e:
        return {"ok": False, "reason": e.reason, "message": str(e)}
    except Exception as e:  # a malformed file must never stop a dataset build
        return {"ok": False, "reason": "error", "message": f"{job.path}: {type(e).__name__}: {e}"}


# ---- the build ---------------------------------------------------------------------------------

def build_dataset(config_name: str, midi_dirs: list, out_dir, workers: int = 2, limit: int | None = None,
                  progress: bool = True, shard_size: int | None = None) -> dict:
    """Read the folders and write the splits (see the module docstring); `shard_size`: write every
    split as shards of that many examples while reading (memory bounded by one shard per split)."""
    config = get_config(config_name)
    t0 = time.time()
    all_jobs, sources = [], []
    for d in midi_dirs:
        kind, jobs = list_jobs(d)
        jobs = spread(jobs, limit)
        if kind == "groove" and config.kind != "drums":
            raise ValueError(f"{d} is the Groove drum set; config {config_name} is a {config.kind} config")
        sources.append({"dir": str(d), "label": Path(d).name, "kind": kind, "files": len(jobs), "files_read": 0,
                        "files_with_windows": 0, "skipped": {}, "examples": {s: 0 for s in SPLITS}})
        all_jobs.extend((j, len(sources) - 1) for j in jobs)
    has_beat_type = any(s["kind"] == "groove" for s in sources)

    songs: list[str] = []
    song_index: dict[str, int] = {}
    song_split: dict[str, str] = {}
    steps, ntracks = config.num_steps, len(config.tracks)
    array_types = {"tokens": (np.uint16, (steps, ntracks)), "song": (np.int32, ()), "start_bar": (np.int32, ())}
    if has_beat_type:
        array_types["beat_type"] = (np.int8, ())
    # a sharded build keeps 8-byte digests of the windows, not the windows (see WindowIndex)
    seen = {s: WindowIndex() if shard_size else set() for s in SPLITS}
    writers = {s: SplitWriter(out_dir, s, array_types, shard_size) for s in SPLITS}
    split_songs = {s: set() for s in SPLITS}
    fills = {s: 0 for s in SPLITS}
    skipped_files, window_stats = [], WindowStats()
    global_dups = 0

    tasks = ((j, config_name) for j, _ in all_jobs)
    iterator = None
    pool = Pool(workers) if workers > 1 else None
    try:
        results = pool.imap(process_file, tasks, chunksize=4) if pool else map(process_file, tasks)
        if progress:
            from tqdm import tqdm
            iterator = tqdm(results, total=len(all_jobs), desc=f"dataset {config_name}", unit="file")
        else:
            iterator = results
        for (job, src), res in zip(all_jobs, iterator):
            source = sources[src]
            if not res["ok"]:
                source["skipped"][res["reason"]] = source["skipped"].get(res["reason"], 0) + 1
                skipped_files.append({"path": job.path, "reason": res["reason"], "message": res["message"]})
                continue
            source["files_read"] += 1
            for k, v in res["stats"].items():
                window_stats.add(k, v)
            if song_split.setdefault(job.song_id, job.split) != job.split:
                raise RuntimeError(f"song {job.song_id} assigned to two splits")
            if shard_size:
                tokens, idx = seen[job.split].unique(res["tokens"])
            else:
                tokens, idx = windows.unique_windows(res["tokens"], seen[job.split])
            global_dups += len(res["tokens"]) - len(idx)
            if not len(idx):
                continue
            source["files_with_windows"] += 1
            if job.song_id not in song_index:
                song_index[job.song_id] = len(songs)
                songs.append(job.song_id)
            rows = {"tokens": tokens, "song": np.full(len(idx), song_index[job.song_id], np.int32),
                    "start_bar": res["start_bar"][idx].astype(np.int32)}
            if has_beat_type:
                rows["beat_type"] = np.full(len(idx), job.beat_type, np.int8)
                fills[job.split] += len(idx) if job.beat_type == 1 else 0
            writers[job.split].add(**rows)
            split_songs[job.split].add(song_index[job.song_id])
            source["examples"][job.split] += len(idx)
    finally:
        if pool:
            pool.close()
            pool.join()

    out = Path(out_dir)
    split_summary = {}
    for s in SPLITS:
        writers[s].close()
        split_summary[s] = {"examples": writers[s].examples, "songs": len(split_songs[s])}
        if has_beat_type:
            split_summary[s]["fills"] = fills[s]
        if shard_size:
            split_summary[s]["shards"] = len(writers[s].shards)

    train_keys = seen["train"]
    if shard_size:
        cross = sum(int(train_keys.contains(seen[s].keys()).sum()) for s in ("validation", "test"))
    else:
        cross = sum(1 for s in ("validation", "test") for k in seen[s] if k in train_keys)
    skipped_by_reason: dict[str, int] = {}
    for f in skipped_files:
        skipped_by_reason[f["reason"]] = skipped_by_reason.get(f["reason"], 0) + 1
    summary = {
        "config": config_name,
        "bars": config.bars,
        "num_steps": steps,
        "tracks": [t["name"] for t in config.tracks],
        "arrays": {"tokens": "uint16 (N, steps, tracks)", "song": "int32 index into songs",
                   "start_bar": "int32 bar of the song where the window starts",
                   **({"beat_type": "int8 0 beat, 1 fill, -1 other source"} if has_beat_type else {})},
        "splits": split_summary,
        "sources": sources,
        "files": len(all_jobs),
        "files_read": sum(s["files_read"] for s in sources),
        "files_skipped": len(skipped_files),
        "skipped_by_reason": skipped_by_reason,
        "windows": {**dict(window_stats), "duplicates_across_songs": global_dups},
        "eval_windows_also_in_train": cross,
        "split_rule": "groove: info.csv split; others: sha1(song id) % 100 -> <80 train, <90 validation, else test",
        "limit_per_dir": limit,
        "shard_size": shard_size,
        "seconds": round(time.time() - t0, 1),
        "songs": songs,
        "song_split": [song_split[s] for s in songs],
        "skipped_files": skipped_files,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def format_summary(summary: dict) -> str:
    lines = [f"{summary['config']}: {summary['files_read']} files read, {summary['files_skipped']} skipped "
             f"{summary['skipped_by_reason']} in {summary['seconds']}s"]
    for s in SPLITS:
        sp = summary["splits"][s]
        lines.append(f"  {s:<10} {sp['examples']:>7} examples from {sp['songs']} songs")
    for src in summary["sources"]:
        lines.append(f"  {src['label']} ({src['kind']}): {src['files']} files, {src['files_read']} read, "
                     f"{src['files_with_windows']} with windows, skipped {src['skipped']}, examples {src['examples']}")
    return "\n".join(lines)


# ---- CLI ---------------------------------------------------------------------------------------

def add_parser(subparsers) -> None:
    p = subparsers.add_parser("dataset", help="build token windows + splits from MIDI folders",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="config name (export_onnx.configs.CONFIGS)")
    p.add_argument("--midi-dir", action="append", required=True,
                   help="a MIDI folder (pop909, nottingham, groove, lmd_beatles or any folder); repeatable")
    p.add_argument("--out", required=True, help="output folder for {train,validation,test}.npz + summary.json")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--limit", type=int, default=None,
                   help="use only this many files per folder, spread evenly (for quick checks)")
    p.add_argument("--shard-size", type=int, default=None, metavar="N",
                   help="write every split while reading, as memory-mappable shards of N examples "
                        "(<split>-NNNNN.<array>.npy + <split>.shards.json), for sets too large for memory")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    summary = build_dataset(args.config, args.midi_dir, args.out, workers=args.workers, limit=args.limit,
                            progress=not args.no_progress, shard_size=args.shard_size)
    print(format_summary(summary))
    for f in summary["skipped_files"][:20]:
        print(f"  skipped [{f['reason']}] {f['message']}")
    if len(summary["skipped_files"]) > 20:
        print(f"  ... {len(summary['skipped_files']) - 20} more in {Path(args.out) / 'summary.json'}")
    return 0
