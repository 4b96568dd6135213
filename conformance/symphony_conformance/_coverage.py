"""``symphony-conformance coverage``: which requirements the suite checks, and how.

The suite is collected in-process (``pytest --collect-only``, no test runs): every conformance
test declares its requirements (``@pytest.mark.requirement``), and a vector test also names its
vector (``symphony_vector``). Per requirement the command counts the *tests* (conformance tests
that are not vector tests) and the *vectors* the suite drives; vectors of the fixtures the suite
does not drive are shown apart and do not count. A MUST with neither a test nor a driven vector
is a gap: the command exits 1.

By default only the profiles this harness drives are graded (the others have no test yet, by
design); ``--all`` grades every profile of the spec.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pytest

from . import _spec


@dataclass
class RequirementCoverage:
    requirement: _spec.Requirement
    tests: list[str] = field(default_factory=list)
    vectors: list[str] = field(default_factory=list)
    """Driven vectors (the suite collects a test for each)."""
    undriven_vectors: list[str] = field(default_factory=list)

    @property
    def gap(self) -> bool:
        return self.requirement.level == "MUST" and not self.tests and not self.vectors


class _Collector:
    symphony_cli = True  # the plugin prints no table

    def __init__(self) -> None:
        self.items: list[tuple[str, tuple[str, ...], str | None]] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[Any]) -> None:
        """Before the plugin deselects anything (a test that does not apply to a run still exists)."""
        from .plugin import CASE_FIXTURE

        for item in items:
            if CASE_FIXTURE not in getattr(item, "fixturenames", ()):
                continue
            reqs: dict[str, None] = {}
            for mark in item.iter_markers("requirement"):
                for rid in mark.args:
                    reqs.setdefault(str(rid), None)
            if not reqs:  # the placeholder of a parametrization without values
                continue
            vector = item.get_closest_marker("symphony_vector")
            self.items.append((item.nodeid, tuple(reqs), str(vector.args[0]) if vector is not None else None))


def collect_suite(vectors_dir: str | None = None) -> list[tuple[str, tuple[str, ...], str | None]]:
    """(node id, requirement ids, vector id or None) of every conformance test of the suite."""
    from . import suite
    from .cli import HarnessError, _isolated_environment

    suite_dir = Path(suite.__file__).resolve().parent
    argv = [
        "--pyargs",
        "symphony_conformance.suite",
        "-p",
        "symphony_conformance.plugin",
        "-p",
        "no:cacheprovider",
        "-c",
        os.devnull,
        "--rootdir",
        str(suite_dir.parent),
        "--noconftest",
        "--collect-only",
        "-q",
    ]
    if vectors_dir:
        argv += ["--symphony-vectors", vectors_dir]
    collector = _Collector()
    sink = io.StringIO()
    with _isolated_environment(), contextlib.redirect_stdout(sink):
        rc = pytest.main(argv, plugins=[collector])
    if rc not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise HarnessError(
            f"collecting the suite failed (pytest exit code {int(rc)}):\n{sink.getvalue()[-3000:]}"
        )
    return collector.items


def coverage(
    profiles: Sequence[str], vectors_dir: str | None = None
) -> tuple[list[RequirementCoverage], int]:
    """The coverage of every requirement of ``profiles``, and the number of conformance tests."""
    from ._vectors import load_vectors

    items = collect_suite(vectors_dir)
    reqs = _spec.requirements()
    table = {rid: RequirementCoverage(r) for rid, r in reqs.items() if r.profile in profiles}
    driven: set[str] = set()
    for nodeid, rids, vector in items:
        if vector is not None:
            driven.add(vector)
        for rid in rids:
            cov = table.get(rid)
            if cov is None:
                continue
            if vector is None:
                cov.tests.append(nodeid)
            elif vector not in cov.vectors:
                cov.vectors.append(vector)
    for v in load_vectors(Path(vectors_dir) if vectors_dir else None):
        if v.id in driven:
            continue
        for rid in v.requirements:
            if rid in table:
                table[rid].undriven_vectors.append(v.id)
    return list(table.values()), len(items)


def coverage_command(args: argparse.Namespace, out: TextIO) -> int:
    from ._adapters import driven_profiles
    from ._vectors import VectorError
    from .cli import HarnessError

    known = _spec.profiles()
    for p in args.profile:
        if p not in known:
            raise HarnessError(f"--profile {p!r}: unknown profile; known: {', '.join(known)}")
    driven = driven_profiles()
    if args.profile:
        profiles = list(dict.fromkeys(args.profile))
        scope = "the selected profiles"
    elif args.all:
        profiles = known
        scope = "every profile of the spec (--all)"
    else:
        profiles = driven
        others = [p for p in known if p not in driven]
        scope = "the profiles this harness drives" + (
            f" (not graded: {', '.join(others)}; --all to include them)" if others else ""
        )
    try:
        table, n_items = coverage(profiles, args.vectors)
    except (_spec.SpecError, VectorError) as e:
        raise HarnessError(str(e)) from None
    print(f"requirement coverage of {scope}; {n_items} conformance tests collected", file=out)
    print("", file=out)
    print(
        f"{'profile':<14} {'MUST':>4}  {'with tests':>10}  {'with vectors':>12}  {'with neither':>12}  "
        "other levels",
        file=out,
    )
    for p in profiles:
        of = [c for c in table if c.requirement.profile == p]
        musts = [c for c in of if c.requirement.level == "MUST"]
        with_tests = sum(1 for c in musts if c.tests)
        with_vectors = sum(1 for c in musts if c.vectors)
        n_gaps = sum(1 for c in musts if c.gap)
        n_other = len(of) - len(musts)
        note = "" if p in driven else "  (not driven by this harness)"
        print(
            f"{p:<14} {len(musts):>4}  {with_tests:>10}  {with_vectors:>12}  {n_gaps:>12}  {n_other}{note}",
            file=out,
        )
    print("", file=out)
    print(
        f"{'requirement':<12} {'level':<6} {'profile':<14} {'tests':>5} {'vectors':>7}  not driven", file=out
    )
    for c in table:
        r = c.requirement
        flag = "  <- GAP" if c.gap else ""
        undriven = str(len(c.undriven_vectors)) if c.undriven_vectors else ""
        print(
            f"{r.id:<12} {r.level:<6} {r.profile:<14} {len(c.tests):>5} {len(c.vectors):>7}  "
            f"{undriven:>10}{flag}",
            file=out,
        )
        if args.verbose:
            for t in c.tests:
                print(f"    test   {t}", file=out)
            for v in c.vectors:
                print(f"    vector {v}", file=out)
    gaps = [c.requirement for c in table if c.gap]
    print("", file=out)
    if gaps:
        shown = ", ".join(f"{r.id} ({r.profile})" for r in gaps)
        print(
            f"COVERAGE GAP: {len(gaps)} MUST requirement(s) with neither a test nor a driven vector: {shown}",
            file=out,
        )
        return 1
    n_musts = sum(1 for c in table if c.requirement.level == "MUST")
    print(f"coverage OK: each of the {n_musts} MUST requirements has a test or a driven vector", file=out)
    return 0


def add_coverage_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile", action="append", default=[], metavar="P", help="only this profile (repeatable)"
    )
    p.add_argument("--all", action="store_true", help="every profile of the spec, driven or not")
    p.add_argument(
        "--vectors", default=None, metavar="DIR", help="golden vectors directory (default: bundled)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="list each requirement's tests and vectors")
