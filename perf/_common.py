"""Shared by the perf/ scripts: runner set-up, metadata, skip notes, timing helpers, the C floor.

Naming: ``envelope.*``, ``transport.*``, ``bus.*`` time the reference; ``floor.*`` time the same work
with nothing of ours in it (``floor.py.*`` the standard library, ``floor.c.*`` C); ``peer.*`` time
other libraries doing the same job. A benchmark that cannot run here (no C compiler, a peer not
installed, a component not written yet) is not registered: it is listed in the run's metadata under
``perf_skipped`` with the reason, which ``perf/check.py`` reports instead of a number.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import pyperf

# The payloads of `symphony-conformance latency`, re-exported: both measure the same round trip.
from symphony_conformance._latency import payload_of_size as payload_of_size

HERE = Path(__file__).resolve().parent
SKIP_KEY = "perf_skipped"
SKIP_SEP = " | "
PERF_EXTRA = "pip install 'symphony-ipc[perf]'"


def _version(dist: str) -> str | None:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return None


def _pass_bench(cmd: list[str], args: Any) -> None:
    for name in args.bench or ():
        cmd.extend(("--bench", name))


def make_runner(suite: str, **kwargs: Any) -> pyperf.Runner:
    """A runner whose runs all carry the versions that matter (pyperf adds the machine's), with a
    ``-b/--bench NAME`` option (repeatable): run only the benchmarks whose name contains NAME."""
    runner = pyperf.Runner(add_cmdline_args=_pass_bench, **kwargs)
    runner.argparser.add_argument(
        "-b",
        "--bench",
        action="append",
        metavar="NAME",
        help="run only the benchmarks whose name contains NAME (repeatable; default: all)",
    )
    register = runner.bench_time_func

    def bench_time_func(name: str, *args: Any, **kw: Any) -> Any:
        wanted = runner.args.bench if runner.args is not None else None
        if wanted and not any(w in name for w in wanted):
            return None
        return register(name, *args, **kw)

    runner.bench_time_func = bench_time_func
    md = runner.metadata
    md["perf_suite"] = suite
    for dist in ("symphony-ipc", "msgspec", "msgpack", "pyzmq", "cloudevents"):
        v = _version(dist)
        if v is not None:
            md[f"{dist}_version"] = v
    import symphony_ipc

    md["spec_version"] = symphony_ipc.SPEC_VERSION
    md["python_implementation"] = platform.python_implementation()
    return runner  # pyperf adds the machine: CPU, load_avg_1min per run, Python, date, ...


class Skips:
    """Benchmarks left out of this run, with the reason (stored in every run's metadata)."""

    def __init__(self, runner: pyperf.Runner) -> None:
        self._runner = runner
        self.notes: dict[str, str] = {}

    def add(self, name: str, reason: str) -> None:
        self.notes[name] = reason
        self._runner.metadata[SKIP_KEY] = SKIP_SEP.join(f"{n}: {r}" for n, r in self.notes.items())
        args = self._runner.args
        if args is None or not args.worker:
            print(f"skipped {name}: {reason}", file=sys.stderr)


def parse_skips(text: str) -> dict[str, str]:
    """The inverse of the ``perf_skipped`` metadata value."""
    out = {}
    for item in text.split(SKIP_SEP):
        name, _, reason = item.partition(": ")
        if name:
            out[name] = reason
    return out


#: The clock of in-process, CPU-bound benchmarks (the envelope, the in-process bus): the CPU time
#: of this thread, so that another job's preemption of a shared machine's core is not counted as
#: the code's cost (on an idle machine it equals wall time). Round trips between processes wait by
#: nature and use wall time (``time.perf_counter``).
CPU_CLOCK = time.thread_time
CPU_CLOCK_NAME = "time.thread_time (CPU time of the thread)"
WALL_CLOCK_NAME = "time.perf_counter (wall time)"


def timed(fn: Callable[[], object]) -> Callable[[int], float]:
    """A pyperf time function calling ``fn`` ``loops`` times, timed with :data:`CPU_CLOCK`."""

    def run(loops: int) -> float:
        t0 = CPU_CLOCK()
        for _ in range(loops):
            fn()
        return CPU_CLOCK() - t0

    return run


# ---------------------------------------------------------------- the C floor


def find_cc() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def compiled_floor() -> tuple[Path | None, str]:
    """Compile perf/floor_echo.c once into a temporary folder (cached by source hash and compiler).

    Returns ``(binary, "")`` or ``(None, reason)``.
    """
    cc = find_cc()
    if cc is None:
        return None, "no C compiler (cc, gcc or clang) on PATH"
    src = HERE / "floor_echo.c"
    digest = hashlib.sha256(src.read_bytes() + cc.encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"symphony-ipc-perf-{os.getuid()}"
    binary = folder / f"floor_echo-{digest}"
    if binary.exists():
        return binary, ""
    folder.mkdir(mode=0o700, exist_ok=True)
    staging = folder / f".floor_echo-{digest}-{os.getpid()}"
    try:
        proc = subprocess.run(
            [cc, "-O2", "-o", str(staging), str(src)], capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{cc} failed: {e}"
    if proc.returncode != 0:
        return None, f"{cc} failed: {proc.stderr.strip()[:200]}"
    os.replace(staging, binary)
    return binary, ""
