"""The daemon's palettes: every palette learned or imported by a client, kept by (model, name).

A palette is the player's own style in a model's z space (bridge.core.palette). The store is the
daemon's, not a client's: a palette learned from the device is there for the same player's surface
and for the next set, and is saved in `--state-dir` (one JSON file per palette, written atomically,
read back at start). Without a state directory the store lives in memory only.

Names are short and safe as file names, so a name can never point outside the state directory.
"""
from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from pathlib import Path

from ..core.errors import BadRequest, TooLarge
from ..core.palette import Palette, PaletteError

log = logging.getLogger("bridge.palettes")

MAX_PALETTES = 64
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SUFFIX = ".palette.json"


def check_name(name) -> str:
    """A palette name: 1..64 of A-Z a-z 0-9 _ . - (not starting with . _ or -).

    Raises:
        BadRequest: anything else.
    """
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise BadRequest(f"a palette name is 1..64 letters, digits, '_', '.' or '-' starting with a letter or "
                         f"digit, got {name!r}")
    return name


def summary(p: Palette) -> dict:
    """What `palettes` and `learn` say about a palette."""
    return {"name": p.name, "model": p.model, "windows": p.windows, "directions": len(p.directions),
            "explained": p.info.get("explained"), "clips": p.info.get("clips")}


class PaletteStore:
    """Palettes by (model, name), thread-safe; saved to `state_dir/palettes/` when given one.

    Args:
        state_dir: where palettes are saved and read back from (None: memory only).
        max_palettes: the most palettes kept (a learn or import beyond it is `too_large`).
    """

    def __init__(self, state_dir: str | os.PathLike | None = None, max_palettes: int = MAX_PALETTES):
        self.max_palettes = max_palettes
        self.dir = Path(state_dir) / "palettes" if state_dir is not None else None
        self._palettes: dict[tuple[str, str], Palette] = {}
        self._lock = threading.Lock()
        self.skipped: list[dict] = []        # files that could not be read back: {file, error}
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._load()

    def _file(self, model: str, name: str) -> Path:
        return self.dir / f"{model}__{name}{SUFFIX}"

    def _load(self) -> None:
        for path in sorted(self.dir.glob(f"*{SUFFIX}")):
            try:
                p = Palette.from_json(path.read_text(encoding="utf-8"))
                check_name(p.name)
                if path.name != self._file(p.model, p.name).name:
                    raise PaletteError(f"holds palette {p.name!r} of {p.model}, not what its name says")
            except (OSError, UnicodeDecodeError, BadRequest) as e:
                self.skipped.append({"file": path.name, "error": str(e)})
                log.warning("palette file %s skipped: %s", path.name, e)
                continue
            if len(self._palettes) >= self.max_palettes:
                self.skipped.append({"file": path.name, "error": f"over {self.max_palettes} palettes"})
                continue
            self._palettes[(p.model, p.name)] = p
        if self._palettes or self.skipped:
            log.info("palettes read back from %s: %d (%d skipped)", self.dir, len(self._palettes), len(self.skipped))

    def put(self, palette: Palette) -> bool:
        """Keep `palette` (replacing one of the same model and name) and save it.

        Returns:
            True if it replaced one.
        Raises:
            BadRequest: a bad name. TooLarge: the store is full. OSError: the file cannot be written
            (nothing is kept then).
        """
        check_name(palette.name)
        key = (palette.model, palette.name)
        with self._lock:
            replaced = key in self._palettes
            if not replaced and len(self._palettes) >= self.max_palettes:
                raise TooLarge(f"the daemon keeps at most {self.max_palettes} palettes: forget one first")
            if self.dir is not None:
                self._write(self._file(*key), palette.to_json())
            self._palettes[key] = palette
        return replaced

    def _write(self, path: Path, text: str) -> None:
        # a crash mid-write must never leave a half palette that the next start reads back
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-", suffix=SUFFIX)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, model: str, name) -> Palette:
        """The palette `name` of `model`.

        Raises:
            BadRequest: a bad name, or no such palette.
        """
        check_name(name)
        with self._lock:
            p = self._palettes.get((model, name))
        if p is None:
            raise BadRequest(f"no palette {name!r} for model {model!r} (learn one, or import it)")
        return p

    def forget(self, model: str, name) -> None:
        """Drop a palette and its file.

        Raises:
            BadRequest: a bad name, or no such palette.
        """
        self.get(model, name)
        with self._lock:
            self._palettes.pop((model, name), None)
            if self.dir is not None:
                self._file(model, name).unlink(missing_ok=True)

    def list(self, model: str | None = None) -> list[Palette]:
        """The palettes (of `model`, or all), by model then name."""
        with self._lock:
            items = sorted(self._palettes.items())
        return [p for (m, _), p in items if model is None or m == model]
