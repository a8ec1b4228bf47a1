"""Shared fixtures.

`tiny_models_dir`: a directory holding tiny random-weight model packages of mel_2bar, drums_2bar,
mel_16bar and trio_16bar (export_onnx.tiny, seed 0), usable with `bridge.load_model(dir / name)` or
`load_model(name, models_dirs=dir)`. Built once and cached under the system temp dir, keyed by a
hash of the code that shapes the packages, so later sessions (and parallel ones) reuse it. Treat it
as read-only: copy a package before damaging it.

`shipped_daemon`: a factory, `shipped_daemon(("mel_2bar", ...), *serve_args)` -> a real `python -m
bridge serve` subprocess serving those shipped packages (stopped, and checked to exit 0, at the end of
the module); `c`: a client of the module's `srv` daemon (a test module defines `srv`, usually with
`shipped_daemon`). `shipped_mel`: the shipped mel_2bar loaded in the test process.

`folk_clips`: four 8-bar clips of real 4/4 Nottingham tunes as the shipped mel_2bar reads them
(bridge.Note lists), the player's material of the palette tests.

`tiny_int8_models_dir`: copies of the tiny mel_2bar and trio_16bar with an int8 decoder step
(export_onnx.int8, gate 0); `tiny_int8`: the function that adds one to a package copy.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIGS = ("mel_2bar", "drums_2bar", "mel_16bar", "trio_16bar")
_SOURCES = ["export_onnx/model.py", "export_onnx/lstm.py", "export_onnx/export.py", "export_onnx/tiny.py",
            "export_onnx/configs.py", "bridge/core/codecs.py", "bridge/runtime/package.py"]


def _cache_key() -> str:
    h = hashlib.sha256()
    for rel in _SOURCES:
        p = ROOT / rel
        h.update(rel.encode())
        h.update(p.read_bytes() if p.exists() else b"-")
    try:   # the version without importing torch (seconds)
        from importlib.metadata import version
        h.update(version("torch").encode())
    except Exception:
        pass
    return h.hexdigest()[:16]


def build_cached_tiny_models(configs=TINY_CONFIGS) -> Path:
    cache = Path(tempfile.gettempdir()) / f"latent-bridge-tiny-{_cache_key()}"
    if all((cache / c / "model.json").is_file() for c in configs):
        return cache
    pytest.importorskip("torch", reason="building tiny model packages needs torch (export_onnx)")
    from export_onnx.tiny import build_tiny_packages
    tmp = Path(tempfile.mkdtemp(prefix=cache.name + ".", dir=cache.parent))
    try:
        build_tiny_packages(tmp, configs)
        try:
            os.replace(tmp, cache)        # atomic; fails if another session got there first
        except OSError:
            if cache.exists() and all((cache / c / "model.json").is_file() for c in configs):
                return cache
            shutil.rmtree(cache, ignore_errors=True)
            os.replace(tmp, cache)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return cache


@pytest.fixture(scope="session")
def tiny_models_dir() -> Path:
    return build_cached_tiny_models()


def add_tiny_int8(package_dir, min_agreement: float = 0.0, n: int = 16, **kw) -> dict:
    """Give a (copied) tiny package an int8 decoder step with export_onnx.int8.add_int8, measured on
    `n` held-out stand-ins (the package's own seeded samples at T = 1) and `n` prior samples; the
    gate at `min_agreement` (0: always kept). Returns the manifest's int8 section."""
    from bridge.runtime.engine import load_model
    from export_onnx.int8 import add_int8
    m = load_model(package_dir, provider="cpu", precision="fp32")
    windows = m.decode_tokens(m.sample_z(n, 11), 1.0, seed=12)
    return add_int8(package_dir, windows=windows, n_prior=n, min_agreement=min_agreement, sources="tiny samples", **kw)


@pytest.fixture(scope="session")
def tiny_int8_models_dir(tiny_models_dir, tmp_path_factory) -> Path:
    """Copies of the tiny mel_2bar and trio_16bar packages with an int8 decoder step (gate 0: kept
    whatever the agreement it measured). Read-only, like tiny_models_dir."""
    out = tmp_path_factory.mktemp("tiny_int8")
    for name in ("mel_2bar", "trio_16bar"):
        shutil.copytree(tiny_models_dir / name, out / name)
        add_tiny_int8(out / name)
    return out


@pytest.fixture(scope="session")
def tiny_int8():
    """`add_tiny_int8` (above), for tests that build their own int8 packages."""
    return add_tiny_int8


@pytest.fixture(scope="session")
def folk_clips() -> list:
    """Four 8-bar clips (>= 8 notes each) of the first 4/4 Nottingham tunes, read for the shipped
    mel_2bar the way `python -m bridge learn` reads a clip."""
    import bridge
    from bridge.cli.palette import read_clip
    model = bridge.load_model("mel_2bar")
    clips = []
    for path in sorted((ROOT.parent / "shared" / "data" / "nottingham").glob("*.mid")):
        try:
            notes = read_clip(path, model)
        except ValueError:
            continue   # not 4/4 or unreadable: the CLI refuses those too
        clip = [n for n in notes if n.start < 8 * 4]
        if len(clip) >= 8:
            clips.append(clip)
        if len(clips) == 4:
            return clips
    pytest.fail("not enough 4/4 Nottingham tunes")


SHIPPED = ROOT / "bridge" / "models"


@pytest.fixture(scope="module")
def shipped_daemon(tmp_path_factory):
    """start(names, *serve_args): a daemon serving the shipped packages `names` (symlinked into a
    fresh directory), two workers; every daemon started is stopped at the module's end."""
    from bridge.daemon.client import spawn_server
    started = []

    def start(names, *args):
        d = tmp_path_factory.mktemp("shipped")
        for name in names:
            (d / name).symlink_to(SHIPPED / name)
        server = spawn_server([d], "--workers", "2", *args)
        started.append(server)
        return server
    yield start
    for server in started:
        assert server.stop() == 0


@pytest.fixture
def c(srv):
    """A client (with the handshake) of the test module's `srv` daemon."""
    client = srv.client(timeout=60.0)
    yield client
    client.close()


@pytest.fixture(scope="session")
def shipped_mel():
    """The shipped mel_2bar, loaded here (what the daemon under test serves)."""
    from bridge.runtime.engine import load_model
    return load_model(SHIPPED / "mel_2bar")


@pytest.fixture(scope="session")
def folk_clip_rows(folk_clips) -> list:
    """`folk_clips` as the protocol's note rows (what a client sends in `learn`)."""
    from bridge.daemon.registry import notes_to_rows
    return [notes_to_rows(c) for c in folk_clips]
