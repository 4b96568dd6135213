"""Plain-text rendering of the per-requirement verdicts (the table a person reads after a run)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ._results import Conformance, RequirementResult

_HEADERS = ("requirement", "level", "profile", "verdict", "passed", "failed", "skipped", "errored")


def requirement_table(results: Sequence[RequirementResult], declared_profiles: Iterable[str]) -> str:
    """One row per requirement; requirements of profiles the implementation does not declare
    show ``not declared`` as their verdict."""
    declared = set(declared_profiles)
    rows = [
        (
            r.id,
            r.level,
            r.profile,
            r.verdict if r.profile in declared else "not declared",
            str(r.passed),
            str(r.failed),
            str(r.skipped),
            str(r.errored),
        )
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(_HEADERS)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    out = [line(_HEADERS), line(["-" * w for w in widths])]
    out.extend(line(row) for row in rows)
    return "\n".join(out)


def failure_details(results: Sequence[RequirementResult], limit: int = 3) -> str:
    """For each failed or errored requirement: its statement and its first failing cases."""
    out: list[str] = []
    for r in results:
        if r.verdict not in ("failed", "errored"):
            continue
        out.append(f"{r.verdict.upper()} {r.id} ({r.level}, {r.profile}): {r.statement}")
        for nodeid in r.failing_cases[:limit]:
            out.append(f"    {nodeid}")
        if len(r.failing_cases) > limit:
            out.append(f"    ... and {len(r.failing_cases) - limit} more")
    return "\n".join(out)


def summary_line(results: Sequence[RequirementResult], verdict: Conformance) -> str:
    counts: dict[str, int] = {}
    declared = set(verdict.declared_profiles)
    for r in results:
        key = r.verdict if r.profile in declared else "not declared"
        counts[key] = counts.get(key, 0) + 1
    parts = ", ".join(
        f"{counts[k]} {k}"
        for k in ("passed", "failed", "errored", "skipped", "untested", "not declared")
        if counts.get(k)
    )
    if verdict.conforms:
        head = "CONFORMS"
        tail = f" ({len(verdict.untested)} MUST untested by the suite)" if verdict.untested else ""
    else:
        head = "DOES NOT CONFORM"
        bad = [*verdict.failed, *verdict.errored]
        tail = f": MUST not met: {', '.join(bad)}" if bad else ""
        if verdict.skipped:
            tail += f"{';' if bad else ':'} MUST skipped by the implementation: {', '.join(verdict.skipped)}"
    profiles = ", ".join(verdict.declared_profiles) or "none"
    return f"{head} [{profiles}] - requirements: {parts}{tail}"
