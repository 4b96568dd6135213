"""``symphony-conformance selftest``: does the suite catch faults?

Runs the suite against the reference and against every seeded-fault mutant of the four
catalogues (:data:`CATALOGUES`), each mutant on its own profile only, with quick Hypothesis
settings and a fixed seed, in worker processes: the implementations of
:mod:`symphony_conformance.mutants` (the message profiles and the bus) with ``--impl``, the
transport makers of :mod:`symphony_conformance.transport_mutants` with ``--transport`` (its one
frame-decoder mutant with ``--impl``) on the profile ``transport``, the implementations of
:mod:`symphony_conformance.security_mutants` with ``--impl`` on the profile ``security``, the
node proxies of :mod:`symphony_conformance.node_mutants` with ``--impl`` on the profile
``bus-node``. The reference runs once per catalogue, on the profiles of its selected mutants.
Each worker is started once and runs its share of the jobs in-process, one ``symphony-conformance
run`` after the other (a job costs what pytest's collection and the profile's tests cost, not a
Python start-up); a job of the profiles transport, security or bus-node gets a fresh worker of
its own (:func:`isolated`).
``-n N`` is a CPU budget: as many jobs run at a time as their estimated CPU shares fit in N cores
(:func:`cpu_share`: the transport, security and bus checks mostly wait).

A mutant is *caught* when the run fails and every requirement the mutant declares has a failed
or errored case; it *survived* when none of them has one (*partly caught* otherwise). A case
that failed because the mutant raised an unexpected exception (a bug of the mutant, not a fault
the suite detected) does not count: if only such cases hit it, the mutant *crashed*. The
selftest passes (exit 0) when every mutant is caught and the reference conforms.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

DEFAULT_SEED: Final = 20240517
DEFAULT_HYPOTHESIS_PROFILE: Final = "quick"
REFERENCE: Final = "reference"

#: The seeded-fault catalogues: ``message`` (:mod:`.mutants`: the message profiles and the bus),
#: ``transport`` (:mod:`.transport_mutants`), ``security`` (:mod:`.security_mutants`), ``bus-node``
#: (:mod:`.node_mutants`: wire-level proxies in front of the reference's bus node).
CATALOGUES: Final = ("message", "transport", "security", "bus-node")


@dataclass(frozen=True)
class Entry:
    """One mutant of any catalogue, in the shape the selftest runs it."""

    name: str
    catalogue: str
    profile: str
    """The one profile run against it (its checks must catch it)."""
    breaks: tuple[str, ...]
    impl: str = REFERENCE
    """The ``--impl`` that loads it (the reference for a transport maker)."""
    transport: str = ""
    """The ``--transport`` that loads it (a transport mutant's maker); empty: none."""


def catalogue_entries() -> list[Entry]:
    """Every mutant of the four catalogues, in catalogue order. ValueError when two share a name
    (``--mutant NAME`` and the results are keyed by name)."""
    from .mutants import CATALOGUE as MESSAGE
    from .node_mutants import CATALOGUE as NODE
    from .security_mutants import CATALOGUE as SECURITY
    from .transport_mutants import CATALOGUE as TRANSPORT

    out = [Entry(m.name, "message", m.profile, m.breaks, impl=m.impl_spec) for m in MESSAGE.values()]
    for t in TRANSPORT.values():
        loads = {"transport": t.spec} if t.kind == "transport" else {"impl": t.spec}
        out.append(Entry(t.name, "transport", t.profile, t.breaks, **loads))
    out += [Entry(m.name, "security", m.profile, m.breaks, impl=m.spec) for m in SECURITY.values()]
    out += [Entry(m.name, "bus-node", m.profile, m.breaks, impl=m.spec) for m in NODE.values()]
    twice = sorted(n for n, k in Counter(e.name for e in out).items() if k > 1)
    if twice:
        raise ValueError(f"mutant name(s) in more than one catalogue: {', '.join(twice)}")
    return out


@dataclass(frozen=True)
class Job:
    name: str
    impl: str
    profiles: tuple[str, ...]
    breaks: tuple[str, ...] = ()
    transport: str = ""
    """A ``--transport`` spec; empty: the implementation's own transports."""
    catalogue: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "catalogue": self.catalogue,
            "impl": self.impl,
            "transport": self.transport,
            "profiles": list(self.profiles),
            "breaks": list(self.breaks),
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Job:
        return Job(
            str(data["name"]),
            str(data["impl"]),
            tuple(data["profiles"]),
            tuple(data["breaks"]),
            str(data.get("transport") or ""),
            str(data.get("catalogue") or ""),
        )


@dataclass
class JobResult:
    job: Job
    exit_code: int
    duration: float
    failed_requirements: list[str] = field(default_factory=list)
    """The selected profiles' requirements with a failed or errored case."""
    failing_cases: list[tuple[str, list[str]]] = field(default_factory=list)
    """(node id, requirement ids) of every failed or errored case."""
    crashed_cases: list[str] = field(default_factory=list)
    messages: dict[str, str] = field(default_factory=dict)
    """The failure message of each failing case (its start: what a flaky failure was)."""
    """The failing cases where the implementation raised an exception that is no protocol error."""
    error: str = ""
    cpu: float = 0.0
    """CPU seconds the run used (its worker process, threads and children included)."""

    @property
    def caught_by(self) -> list[str]:
        """The declared requirements that have a failing case (not a crash)."""
        crashed = set(self.crashed_cases)
        hit = {r for nodeid, reqs in self.failing_cases if nodeid not in crashed for r in reqs}
        return [r for r in self.job.breaks if r in hit]

    @property
    def status(self) -> str:
        if self.job.name == REFERENCE:
            return (
                "PASS" if self.exit_code == 0 else ("ERROR" if self.exit_code == 2 or self.error else "FAIL")
            )
        if self.exit_code == 2 or self.error:
            return "ERROR"
        caught = self.caught_by
        if self.exit_code == 1 and len(caught) == len(self.job.breaks):
            return "caught"
        if caught:
            return "PARTLY CAUGHT"
        crashed = set(self.crashed_cases)
        if any(set(reqs) & set(self.job.breaks) for nodeid, reqs in self.failing_cases if nodeid in crashed):
            return "CRASHED"
        return "SURVIVED"

    @property
    def ok(self) -> bool:
        return self.status in ("PASS", "caught")

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.job.to_dict(),
            "status": self.status,
            "exit_code": self.exit_code,
            "duration": round(self.duration, 3),
            "cpu": round(self.cpu, 3),
            "caught_by": self.caught_by,
            "failed_requirements": self.failed_requirements,
            "failing_cases": [
                {"nodeid": n, "requirements": r, "message": self.messages.get(n, "")}
                for n, r in self.failing_cases
            ],
            "crashed_cases": list(self.crashed_cases),
            "error": self.error,
        }


def jobs_for(
    profiles: Sequence[str] = (),
    names: Sequence[str] = (),
    *,
    catalogues: Sequence[str] = (),
    with_reference: bool = True,
) -> list[Job]:
    """The mutants to run (of ``catalogues``, of ``profiles``, or named: every filter given
    applies), and the reference on their profiles."""
    entries = catalogue_entries()
    bad = [c for c in catalogues if c not in CATALOGUES]
    if bad:
        raise ValueError(f"unknown catalogue(s): {', '.join(bad)}; known: {', '.join(CATALOGUES)}")
    known = {e.name for e in entries}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"unknown mutant(s): {', '.join(unknown)}; see symphony_conformance.mutants, "
            "transport_mutants, security_mutants and node_mutants"
        )
    chosen = [
        m
        for m in entries
        if (not catalogues or m.catalogue in catalogues)
        and (not profiles or m.profile in profiles)
        and (not names or m.name in names)
    ]
    jobs = [Job(m.name, m.impl, (m.profile,), m.breaks, m.transport, m.catalogue) for m in chosen]
    if with_reference and chosen:
        # One reference run per catalogue, on its mutants' profiles: under the conditions its
        # mutants run in (a transport or security run in a fresh process, see isolated()).
        seen: dict[str, dict[str, None]] = {}
        for m in chosen:
            seen.setdefault(m.catalogue, {}).setdefault(m.profile, None)
        jobs[:0] = [Job(REFERENCE, REFERENCE, tuple(p), catalogue=c) for c, p in seen.items()]
    return jobs


# ---------------------------------------------------------------- one job, in a worker


def _cpu_seconds() -> float:
    """CPU time of this process (every thread) and of its waited-for children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_job(job: Job, *, seed: int, hypothesis_profile: str) -> JobResult:
    """``symphony-conformance run`` of one job, in this process (its output discarded)."""
    cpu = _cpu_seconds()
    result = _run_job(job, seed=seed, hypothesis_profile=hypothesis_profile)
    result.cpu = _cpu_seconds() - cpu
    return result


def _run_job(job: Job, *, seed: int, hypothesis_profile: str) -> JobResult:
    from .cli import main

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="symphony-selftest-") as tmp:
        report_path = Path(tmp) / "report.json"
        argv = ["run", "--impl", job.impl, "--seed", str(seed), "--hypothesis-profile", hypothesis_profile]
        if job.transport:
            argv += ["--transport", job.transport]
        for p in job.profiles:
            argv += ["--profile", p]
        argv += ["--report-json", str(report_path)]
        sink, errors = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(errors):
                code = main(argv, out=sink)
        except BaseException as e:  # a crash of the harness itself: reported, never hidden
            return JobResult(job, 2, time.monotonic() - started, error=f"{type(e).__name__}: {e}")
        result = JobResult(job, code, time.monotonic() - started)
        if code == 2 or not report_path.exists():
            shown = [ln for ln in sink.getvalue().splitlines() if ln.strip()][-6:]
            result.error = " | ".join([errors.getvalue().strip() or "no report", *shown])[:3000]
            return result
        report = json.loads(report_path.read_text(encoding="utf-8"))
    result.failed_requirements = [
        r["id"] for r in report["requirements"] if r["verdict"] in ("failed", "errored")
    ]
    failing = [c for c in report["cases"] if c["outcome"] in ("failed", "errored")]
    result.failing_cases = [(c["nodeid"], list(c["requirements"])) for c in failing]
    result.messages = {c["nodeid"]: str(c.get("message") or "")[:500] for c in failing}
    result.crashed_cases = [c["nodeid"] for c in failing if _crashed(c)]
    return result


def _crashed(case: dict[str, Any]) -> bool:
    """Whether the implementation raised an exception that is no protocol error in this case."""
    for call in case.get("calls") or ():
        raised = (call.get("actual") or {}).get("raised")
        if isinstance(raised, str) and not raised.startswith(("ImplBroken", "ImplSkipped")):
            return True
    return False


def _worker() -> int:
    """Read jobs (JSON lines) on stdin, answer results (JSON lines) on the original stdout; every
    other output of the runs goes to /dev/null."""
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the worker
    for line in sys.stdin:
        if not line.strip():
            continue
        spec = json.loads(line)
        job = Job.from_dict(spec)
        result = run_job(job, seed=int(spec["seed"]), hypothesis_profile=str(spec["hypothesis_profile"]))
        protocol.write(json.dumps(result.to_dict()) + "\n")
    return 0


# ---------------------------------------------------------------- the pool


@contextlib.contextmanager
def _worker_environment() -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS_", "COV_"))}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    yield env


def _result_from(job: Job, data: dict[str, Any]) -> JobResult:
    return JobResult(
        job,
        int(data["exit_code"]),
        float(data["duration"]),
        failed_requirements=list(data["failed_requirements"]),
        failing_cases=[(c["nodeid"], list(c["requirements"])) for c in data["failing_cases"]],
        crashed_cases=list(data.get("crashed_cases") or []),
        messages={c["nodeid"]: str(c.get("message") or "") for c in data["failing_cases"]},
        error=str(data.get("error") or ""),
        cpu=float(data.get("cpu") or 0.0),
    )


#: Rough wall-clock seconds of one mutant's run, by profile (on an idle 2-core machine): only
#: their order matters, the longest jobs start first so that no long one is left for the end.
_COST: Final = {
    "bus-node": 40.0,
    "bus": 15.0,
    "security": 15.0,
    "transport": 8.0,
    "envelope": 4.5,
    "codec-json": 2.5,
    "codec-msgpack": 2.2,
    "ttl": 2.0,
    "priority": 2.0,
    "versioning": 1.6,
}
#: The share of a core a run of the profile keeps busy (CPU time over wall-clock time, measured:
#: the transport, security and bus checks mostly wait, for timeouts, peers and children); 1 for
#: the others.
_SHARE: Final = {"bus-node": 0.1, "security": 0.15, "transport": 0.3, "bus": 0.35, "envelope": 0.7}


def _cost(job: Job) -> float:
    if job.name == REFERENCE:
        return float("inf")
    if job.catalogue == "transport" and not job.transport:  # an --impl: every transport is run
        return 26.0
    return max(_COST.get(p, 5.0) for p in job.profiles)


def cpu_share(job: Job) -> float:
    """The estimated share of a core ``job`` keeps busy."""
    return max(_SHARE.get(p, 1.0) for p in job.profiles)


def isolated(job: Job) -> bool:
    """Whether ``job`` gets a worker process of its own: the runs of the profiles transport,
    security and bus-node start listeners, threads and child processes, and a worker that ran other
    jobs before made them several times slower (and once crashed pytest's assertion rewriting)."""
    return bool({"transport", "security", "bus-node"} & set(job.profiles))


def _start_worker() -> subprocess.Popen[str]:
    with _worker_environment() as env:
        return subprocess.Popen(
            [sys.executable, "-m", "symphony_conformance._selftest", "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )


def _stop_worker(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(OSError):
        assert proc.stdin is not None
        proc.stdin.close()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _Scheduler:
    """Hands out jobs, the longest first, while the running jobs' CPU shares fit in ``cores``
    (and at most ``processes`` at a time; a job that does not fit starts when nothing runs)."""

    def __init__(self, jobs: Sequence[Job], *, cores: float, processes: int) -> None:
        self.pending = sorted(jobs, key=_cost, reverse=True)
        self.cores = cores
        self.processes = processes
        self.busy = 0.0
        self.running = 0
        self._cond = threading.Condition()

    def take(self) -> Job | None:
        with self._cond:
            while self.pending:
                room = self.running < self.processes
                for i, job in enumerate(self.pending):
                    if self.running == 0 or (room and self.busy + cpu_share(job) <= self.cores + 1e-9):
                        del self.pending[i]
                        self.busy += cpu_share(job)
                        self.running += 1
                        return job
                self._cond.wait()
            return None

    def done(self, job: Job) -> None:
        with self._cond:
            self.busy -= cpu_share(job)
            self.running -= 1
            self._cond.notify_all()


def run_jobs(
    jobs: Sequence[Job],
    *,
    workers: int,
    seed: int,
    hypothesis_profile: str,
    timeout: float = 600.0,
    progress: TextIO | None = None,
) -> list[JobResult]:
    """Run ``jobs`` on worker processes, the references and the longest jobs first: as many at a
    time as their estimated CPU shares (:func:`cpu_share`) fit in ``workers`` cores, at most
    ``3 * workers`` processes. An :func:`isolated` job gets a fresh process, which ends with it."""
    scheduler = _Scheduler(jobs, cores=float(workers), processes=3 * workers)
    results: dict[int, JobResult] = {}
    lock = threading.Lock()

    def serve() -> None:
        proc: subprocess.Popen[str] | None = None
        used = False
        try:
            while (job := scheduler.take()) is not None:
                try:
                    if proc is not None and used and isolated(job):
                        _stop_worker(proc)
                        proc = None
                    if proc is None:
                        proc, used = _start_worker(), False
                    result = _ask(
                        proc, job, seed=seed, hypothesis_profile=hypothesis_profile, timeout=timeout
                    )
                    used = True
                finally:
                    scheduler.done(job)
                with lock:
                    results[id(job)] = result
                    if progress is not None:
                        print(
                            f"  {job.name} [{', '.join(job.profiles)}]: {result.status} "
                            f"({result.duration:.1f} s, {result.cpu:.1f} s of CPU)",
                            file=progress,
                            flush=True,
                        )
                if result.exit_code == 2 and result.error.startswith("the worker "):
                    return  # this worker is gone; the others take the remaining jobs
                if isolated(job):
                    _stop_worker(proc)
                    proc = None
        finally:
            if proc is not None:
                _stop_worker(proc)

    n_threads = max(1, min(3 * workers, len(jobs)))
    threads = [threading.Thread(target=serve, daemon=True) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for job in scheduler.pending:  # every worker died: the rest are errors
        results[id(job)] = JobResult(job, 2, 0.0, error="no worker left to run it")
    lost = "its worker could not be started"
    return [results.get(id(j)) or JobResult(j, 2, 0.0, error=lost) for j in jobs]


def _ask(
    proc: subprocess.Popen[str], job: Job, *, seed: int, hypothesis_profile: str, timeout: float
) -> JobResult:
    """One job, run by the worker ``proc`` (killed after ``timeout`` seconds)."""
    assert proc.stdin is not None
    assert proc.stdout is not None
    spec = {**job.to_dict(), "seed": seed, "hypothesis_profile": hypothesis_profile}
    started = time.monotonic()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        proc.stdin.write(json.dumps(spec) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
    except OSError:
        line = ""
    finally:
        timer.cancel()
    if line:
        return _result_from(job, json.loads(line))
    code = proc.poll()
    why = f"timed out after {timeout:.0f} s" if code is not None and code < 0 else "died"
    return JobResult(job, 2, time.monotonic() - started, error=f"the worker {why}")


# ---------------------------------------------------------------- the table


def _cell(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _caught_text(r: JobResult) -> str:
    if r.job.name == REFERENCE:
        if r.exit_code == 0:
            return "conforms"
        return r.error or f"does not conform: {', '.join(r.failed_requirements)}"
    if r.error:
        return r.error.splitlines()[0] if r.error.strip() else "error"
    caught = r.caught_by
    if not caught:
        if r.status == "CRASHED":
            return f"only cases where the mutant raised an exception: {', '.join(r.crashed_cases[:2])}"
        also = f" (other failures: {', '.join(r.failed_requirements)})" if r.failed_requirements else ""
        return f"no failing case of {', '.join(r.job.breaks)}{also}"
    cases = [n.rpartition("::")[2] for n, reqs in r.failing_cases if set(reqs) & set(caught)]
    shown = ", ".join(cases[:2]) + (f", +{len(cases) - 2}" if len(cases) > 2 else "")
    missing = [b for b in r.job.breaks if b not in caught]
    extra = [f for f in r.failed_requirements if f not in r.job.breaks]
    text = f"{', '.join(caught)}: {len(cases)} case(s) ({shown})"
    if missing:
        text += f"; NOT {', '.join(missing)}"
    if extra:
        text += f"; also {', '.join(extra)}"
    return text


def render_table(results: Sequence[JobResult]) -> str:
    rows = [
        (
            r.job.name,
            r.job.profiles[0] if len(r.job.profiles) == 1 else f"({len(r.job.profiles)} profiles)",
            ", ".join(r.job.breaks) or "-",
            r.status,
            f"{r.duration:.1f}",
            _cell(_caught_text(r), 110),
        )
        for r in results
    ]
    headers = ("mutant", "profile", "breaks", "result", "s", "caught by (failing requirements and cases)")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers[:-1])]
    out = []
    for cells in (headers, (*("-" * w for w in widths), "-" * 10), *rows):
        head = "  ".join(
            c.ljust(w) if i != 4 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells[:-1], widths, strict=True))
        )
        out.append(f"{head}  {cells[-1]}".rstrip())
    return "\n".join(out)


def kill_rates(results: Sequence[JobResult]) -> list[tuple[str, int, int]]:
    """(profile, caught, mutants) per profile, then ``overall``."""
    per: dict[str, list[int]] = {}
    for r in results:
        if r.job.name == REFERENCE:
            continue
        tally = per.setdefault(r.job.profiles[0], [0, 0])
        tally[1] += 1
        tally[0] += r.status == "caught"
    rows = [(p, c, n) for p, (c, n) in per.items()]
    rows.append(("overall", sum(c for _, c, _ in rows), sum(n for _, _, n in rows)))
    return rows


def selftest_command(args: argparse.Namespace, out: TextIO) -> int:
    from ._adapters import driven_profiles
    from ._hypothesis import UnknownProfileError, settings_for
    from .cli import HarnessError

    for p in args.profile:
        if p not in driven_profiles():
            raise HarnessError(
                f"--profile {p!r}: not a profile the harness drives ({', '.join(driven_profiles())})"
            )
    if args.workers < 1:
        raise HarnessError("-n: expected a number of worker processes >= 1")
    try:
        settings_for(args.hypothesis_profile)
    except UnknownProfileError as e:
        raise HarnessError(f"--hypothesis-profile: {e}") from None
    try:
        jobs = jobs_for(args.profile, args.mutant, catalogues=args.catalogue)
    except ValueError as e:
        raise HarnessError(str(e)) from None
    if not jobs:
        raise HarnessError("no mutant of the selected catalogues and profiles")
    per_catalogue = Counter(j.catalogue for j in jobs if j.name != REFERENCE)
    spread = ", ".join(f"{c} {per_catalogue[c]}" for c in CATALOGUES if per_catalogue[c])
    print(
        f"selftest: {sum(per_catalogue.values())} mutants ({spread}) and the reference; seed "
        f"{args.seed}, Hypothesis profile {args.hypothesis_profile}, -n {args.workers} (cores)",
        file=out,
        flush=True,
    )
    started = time.monotonic()
    results = run_jobs(
        jobs,
        workers=args.workers,
        seed=args.seed,
        hypothesis_profile=args.hypothesis_profile,
        timeout=args.timeout,
        progress=out if args.verbose else None,
    )
    elapsed = time.monotonic() - started
    print("", file=out)
    print(render_table(results), file=out)
    print("", file=out)
    print("kill rate:", file=out)
    for profile, caught, total in kill_rates(results):
        pct = 100.0 * caught / total if total else 0.0
        print(f"  {profile:<14} {caught:>3}/{total:<3} ({pct:.0f}%)", file=out)
    bad = [r for r in results if not r.ok]
    verdict = "PASSED" if not bad else "FAILED"
    detail = "" if not bad else ": " + ", ".join(f"{r.job.name} {r.status}" for r in bad)
    cpu = sum(r.cpu for r in results)
    print(f"\nselftest {verdict} in {elapsed:.1f} s ({cpu:.0f} s of CPU){detail}", file=out)
    if args.json_out:
        doc = {
            "seed": args.seed,
            "hypothesis_profile": args.hypothesis_profile,
            "duration": round(elapsed, 3),
            "cpu": round(cpu, 3),
            "passed": not bad,
            "results": [r.to_dict() for r in results],
            "kill_rates": [{"profile": p, "caught": c, "mutants": n} for p, c, n in kill_rates(results)],
        }
        try:
            Path(args.json_out).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        except OSError as e:
            raise HarnessError(f"--json {args.json_out}: cannot write: {e.strerror or e}") from None
    return 0 if not bad else 1


def add_selftest_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-n",
        dest="workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        metavar="N",
        help="cores' worth of runs at a time, at most 3N worker processes (default: the CPU count, "
        "at most 4)",
    )
    p.add_argument(
        "--catalogue",
        action="append",
        default=[],
        choices=CATALOGUES,
        help="only the mutants of this catalogue (repeatable; default: all four)",
    )
    p.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="P",
        help="only the mutants of this profile (repeatable)",
    )
    p.add_argument(
        "--mutant", action="append", default=[], metavar="NAME", help="only this mutant (repeatable)"
    )
    p.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"seed of the property tests (default {DEFAULT_SEED})"
    )
    p.add_argument(
        "--hypothesis-profile",
        default=DEFAULT_HYPOTHESIS_PROFILE,
        metavar="NAME",
        help=f"property test effort (default {DEFAULT_HYPOTHESIS_PROFILE})",
    )
    p.add_argument(
        "--timeout", type=float, default=600.0, metavar="S", help="per-mutant limit (default 600 s)"
    )
    p.add_argument(
        "--json", dest="json_out", default=None, metavar="FILE", help="also write the results as JSON"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="print each mutant's result as it comes")


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        sys.exit(_worker())
    sys.exit(
        "usage: python -m symphony_conformance._selftest --worker (run by symphony-conformance selftest)"
    )
