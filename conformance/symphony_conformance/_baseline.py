"""Baselines: the failures a release gate expects (``run --expected-failures FILE``).

A baseline file (``spec/baseline.schema.json``, documented in ``docs/ci.md``) lists entries, each
naming a requirement id or a case (a pytest node id, or a vector id) with a reason and an
optional link::

    {"expected_failures": [
        {"requirement": "ENV-005", "reason": "endpoint ids are not checked yet", "link": "https://..."},
        {"case": "codec-json/timestamp-leap-day", "reason": "our date library rejects it"}
    ]}

Against a run, each entry is *expected* (what it names failed or errored: the failure does not
fail the run), *stale* (what it names passed: the run fails and names the entry, so baselines
only shrink) or *not run* (nothing it names ran in this run: another profile, ``-k``).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal

from . import _spec
from ._resources import spec_dir
from ._results import CaseRecord, RequirementResult

EntryKind = Literal["requirement", "case"]
Status = Literal["expected", "stale", "not run"]

PLACEHOLDER_REASON: Final = "TODO: why is this failure expected? (added by --update-baseline)"
_FAILING: Final = ("failed", "errored")


class BaselineError(Exception):
    """A baseline file that is unreadable, malformed or names unknown requirements."""


@dataclass(frozen=True)
class Entry:
    kind: EntryKind
    id: str
    reason: str
    link: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind} {self.id}"

    def to_dict(self) -> dict[str, str]:
        out = {self.kind: self.id, "reason": self.reason}
        if self.link:
            out["link"] = self.link
        return out


@dataclass(frozen=True)
class Baseline:
    entries: tuple[Entry, ...]
    path: str | None = None
    description: str | None = None

    def requirement_ids(self) -> frozenset[str]:
        return frozenset(e.id for e in self.entries if e.kind == "requirement")

    def expects_case(self, nodeid: str, vector_id: str | None, requirements: Iterable[str]) -> bool:
        """Whether a failure of this case is expected: an entry names it, or every requirement it
        checks (of the run's profiles) is listed."""
        ids = {nodeid} | ({vector_id} if vector_id else set())
        if any(e.kind == "case" and e.id in ids for e in self.entries):
            return True
        reqs = set(requirements)
        return bool(reqs) and reqs <= self.requirement_ids()

    def to_document(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.description:
            out["description"] = self.description
        out["expected_failures"] = [e.to_dict() for e in self.entries]
        return out


@cache
def _validator() -> Any:
    jsonschema: Any = importlib.import_module("jsonschema")  # no type stubs
    schema = json.loads((spec_dir() / "baseline.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def parse_baseline(doc: Any, *, where: str = "baseline") -> Baseline:
    """A :class:`Baseline` from its JSON document; :class:`BaselineError` when it is invalid."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        shown = "; ".join(f"{e.json_path}: {e.message}" for e in errors[:5])
        raise BaselineError(f"{where} does not match spec/baseline.schema.json: {shown}")
    known = _spec.requirements()
    entries: list[Entry] = []
    seen: set[tuple[str, str]] = set()
    for raw in doc["expected_failures"]:
        kind: EntryKind = "requirement" if "requirement" in raw else "case"
        ident = str(raw[kind])
        if kind == "requirement" and ident not in known:
            raise BaselineError(f"{where}: unknown requirement id {ident!r} (not in spec/requirements.json)")
        if (kind, ident) in seen:
            raise BaselineError(f"{where}: {kind} {ident!r} is listed twice")
        seen.add((kind, ident))
        entries.append(Entry(kind, ident, str(raw["reason"]), raw.get("link")))
    return Baseline(tuple(entries), description=doc.get("description"))


def load_baseline(path: str | Path) -> Baseline:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"baseline {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BaselineError(f"baseline {path}: cannot read: {e}") from None
    baseline = parse_baseline(doc, where=f"baseline {path}")
    return Baseline(baseline.entries, str(path), baseline.description)


@dataclass(frozen=True)
class EntryStatus:
    entry: Entry
    status: Status
    cases: tuple[str, ...] = ()
    """The failing cases it covers (expected) or the passing ones that make it stale."""

    def to_dict(self) -> dict[str, Any]:
        return {**self.entry.to_dict(), "status": self.status, "cases": list(self.cases)}


@dataclass
class BaselineOutcome:
    """A baseline applied to a run's results."""

    statuses: list[EntryStatus] = field(default_factory=list)
    expected_requirements: tuple[str, ...] = ()
    """Failed or errored requirements whose failure the baseline expects."""
    expected_cases: frozenset[str] = frozenset()
    """Failed or errored cases (node ids) the baseline expects."""

    @property
    def stale(self) -> list[Entry]:
        return [s.entry for s in self.statuses if s.status == "stale"]

    def status_of(self, entry: Entry) -> Status:
        for s in self.statuses:
            if s.entry == entry:
                return s.status
        return "not run"


def apply_baseline(
    baseline: Baseline, results: Sequence[RequirementResult], records: Sequence[CaseRecord]
) -> BaselineOutcome:
    """Match each entry against the run (``results``: the selected profiles' requirements)."""
    by_req = {r.id: r for r in results}
    in_scope = set(by_req)
    statuses: list[EntryStatus] = []
    expected_cases: set[str] = set()
    expected_reqs: set[str] = set()
    for entry in baseline.entries:
        if entry.kind == "case":
            matched = [c for c in records if entry.id in (c.nodeid, c.vector_id)]
            failing = tuple(c.nodeid for c in matched if c.outcome in _FAILING)
            passing = tuple(c.nodeid for c in matched if c.outcome == "passed")
            if failing:
                statuses.append(EntryStatus(entry, "expected", failing))
                expected_cases.update(failing)
            elif passing:
                statuses.append(EntryStatus(entry, "stale", passing))
            else:
                statuses.append(EntryStatus(entry, "not run"))
            continue
        result = by_req.get(entry.id)
        if result is not None and result.verdict in _FAILING:
            statuses.append(EntryStatus(entry, "expected", result.failing_cases))
            expected_reqs.add(entry.id)
        elif result is not None and result.verdict == "passed":
            passing = tuple(c.nodeid for c in records if entry.id in c.requirements and c.outcome == "passed")
            statuses.append(EntryStatus(entry, "stale", passing))
        else:
            statuses.append(EntryStatus(entry, "not run"))
    for c in records:  # a case failing only requirements the baseline lists is expected too
        reqs = [r for r in c.requirements if r in in_scope]
        if c.outcome in _FAILING and reqs and set(reqs) <= expected_reqs:
            expected_cases.add(c.nodeid)
    for r in results:  # a requirement whose every failing case is expected is an expected failure
        if r.verdict in _FAILING and r.failing_cases and set(r.failing_cases) <= expected_cases:
            expected_reqs.add(r.id)
    ordered = tuple(r.id for r in results if r.id in expected_reqs)
    return BaselineOutcome(statuses, ordered, frozenset(expected_cases))


def updated_baseline(
    baseline: Baseline | None,
    outcome: BaselineOutcome | None,
    results: Sequence[RequirementResult],
    declared_profiles: Iterable[str],
    *,
    add_failures: bool,
) -> Baseline:
    """The baseline without its stale entries and, with ``add_failures``, with an entry (and a
    placeholder reason) for every failed or errored MUST of the declared profiles it does not
    expect yet."""
    entries = list(baseline.entries) if baseline is not None else []
    if outcome is not None:
        stale = set(outcome.stale)
        entries = [e for e in entries if e not in stale]
    if add_failures:
        declared = set(declared_profiles)
        expected = set(outcome.expected_requirements) if outcome is not None else set()
        listed = {e.id for e in entries if e.kind == "requirement"}
        for r in results:
            if (
                r.level == "MUST"
                and r.profile in declared
                and r.verdict in _FAILING
                and r.id not in expected
                and r.id not in listed
            ):
                entries.append(Entry("requirement", r.id, PLACEHOLDER_REASON))
    return Baseline(
        tuple(entries),
        baseline.path if baseline is not None else None,
        baseline.description if baseline is not None else None,
    )


def write_baseline(baseline: Baseline, path: str | Path) -> None:
    text = json.dumps(baseline.to_document(), indent=2, ensure_ascii=False) + "\n"
    Path(path).write_text(text, encoding="utf-8")


def summary_lines(outcome: BaselineOutcome) -> list[str]:
    """What a person reads under the table: the expected failures, then the stale entries."""
    out: list[str] = []
    for s in outcome.statuses:
        link = f" ({s.entry.link})" if s.entry.link else ""
        if s.status == "expected":
            out.append(f"EXPECTED FAILURE {s.entry.label}: {s.entry.reason}{link}")
        elif s.status == "stale":
            shown = ", ".join(s.cases[:3]) + (" ..." if len(s.cases) > 3 else "")
            out.append(
                f"STALE baseline entry {s.entry.label}: it passes now ({shown}); "
                "remove it (--update-baseline FILE)"
            )
        else:
            out.append(f"baseline entry {s.entry.label}: not run")
    return out
