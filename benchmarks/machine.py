"""What a benchmark ran on: CPU, cores, library versions, and the load while it ran."""
from __future__ import annotations

import os
import platform
import threading
import time


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(mod: str) -> str | None:
    try:
        from importlib.metadata import version
        return version(mod)
    except Exception:
        return None


def describe() -> dict:
    import numpy
    import onnxruntime
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    mem = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "onnxruntime_providers": onnxruntime.get_available_providers(),
        "numpy": numpy.__version__,
        "torch": _version("torch"),
        "python_osc": _version("python-osc"),
    }


class LoadMonitor:
    """Samples the 1-minute load average every `every` seconds while a run goes on."""

    def __init__(self, every: float = 5.0):
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self.start = os.getloadavg()
        self.end = None
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(2.0)
        self.end = os.getloadavg()

    def _run(self):
        while True:
            self.samples.append((round(time.monotonic() - self._t0, 1), os.getloadavg()[0]))
            if self._stop.wait(self.every):
                return

    def summary(self) -> dict:
        ones = [v for _, v in self.samples] or [self.start[0]]
        cores = os.cpu_count() or 1
        mean = sum(ones) / len(ones)
        return {"start": [round(x, 2) for x in self.start],
                "end": [round(x, 2) for x in (self.end or os.getloadavg())],
                "min_1min": round(min(ones), 2), "mean_1min": round(mean, 2), "max_1min": round(max(ones), 2),
                "per_core_mean": round(mean / cores, 2),
                # the run's own client and daemon keep ~1-2 runnable threads: beyond that, others competed
                "quiet": max(ones) <= cores + 0.5}
