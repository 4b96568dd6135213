"""Conformance results: one record per test case, and the per-requirement verdicts built from them.

Pure data, no pytest: the plugin fills :class:`CaseRecord` objects from pytest reports (on the
xdist controller too: everything a record needs travels in ``report.user_properties``) and
reports, baselines and diffs are computed from these records alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from ._spec import Requirement

Outcome = Literal["passed", "failed", "skipped", "errored"]
Verdict = Literal["passed", "failed", "errored", "skipped", "untested"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("passed", "failed", "skipped", "errored")

# Keys of the (name, value) pairs a suite test carries in ``item.user_properties``.
PROP_REQUIREMENTS: Final = "symphony_requirements"
PROP_PROFILES: Final = "symphony_profiles"
PROP_VECTOR: Final = "symphony_vector"
PROP_BROKEN: Final = "symphony_broken"
PROP_FALSIFYING: Final = "symphony_falsifying_example"
PROP_IMPL: Final = "symphony_implementation"
PROP_SKIP: Final = "symphony_skip"
PROP_CALLS: Final = "symphony_calls"
PROP_TRANSCRIPT: Final = "symphony_transcript"
PROP_STDERR: Final = "symphony_stderr_tail"

SkipKind = Literal["capability", "declined"]


@dataclass
class CaseRecord:
    """The result of one test case (one pytest node id) of the conformance suite."""

    nodeid: str
    outcome: Outcome
    requirements: tuple[str, ...]
    profiles: tuple[str, ...] = ()
    vector_id: str | None = None
    duration: float = 0.0
    message: str = ""
    """One line: the failure's or skip's reason."""
    longrepr: str = ""
    """The failure's full text (truncated), empty when passed."""
    evidence: dict[str, Any] = field(default_factory=dict)
    """What an :class:`~symphony_conformance.ImplBroken` carried (request, response, stderr tail)."""
    falsifying_example: str | None = None
    skip_kind: SkipKind | None = None
    """Why a skipped case was skipped: the implementation does not declare its profile or codec
    (``capability``), or it declined the operation (``declined``); None for other skips."""
    calls: list[dict[str, Any]] = field(default_factory=list)
    """A failed case's operations on the implementation, with its answers (:mod:`._recording`):
    those of the failing example for a property test, the last ones of the test otherwise."""
    transcript: list[dict[str, Any]] = field(default_factory=list)
    """A failed case's last driver exchange (``exec:`` implementations): requests and responses."""
    stderr_tail: str = ""
    """A failed case's implementation stderr tail (``exec:`` implementations)."""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["requirements"] = list(self.requirements)
        out["profiles"] = list(self.profiles)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseRecord:
        return cls(
            nodeid=data["nodeid"],
            outcome=data["outcome"],
            requirements=tuple(data.get("requirements", ())),
            profiles=tuple(data.get("profiles", ())),
            vector_id=data.get("vector_id"),
            duration=float(data.get("duration", 0.0)),
            message=data.get("message", ""),
            longrepr=data.get("longrepr", ""),
            evidence=dict(data.get("evidence") or {}),
            falsifying_example=data.get("falsifying_example"),
            skip_kind=data.get("skip_kind"),
            calls=list(data.get("calls") or []),
            transcript=list(data.get("transcript") or []),
            stderr_tail=data.get("stderr_tail") or "",
        )


def verdict_of(passed: int, failed: int, skipped: int, errored: int) -> Verdict:
    """A requirement's verdict from its cases' outcomes.

    Failed if any case failed; errored if any errored and none failed; passed if at least one
    passed and the rest were skipped; skipped if every case was skipped; untested if none ran.
    """
    if failed:
        return "failed"
    if errored:
        return "errored"
    if passed:
        return "passed"
    if skipped:
        return "skipped"
    return "untested"


@dataclass
class RequirementResult:
    id: str
    level: str
    profile: str
    statement: str
    verdict: Verdict
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errored: int = 0
    declined: int = 0
    """Skipped cases the implementation declined (:class:`~symphony_conformance.ImplSkipped`)."""
    failing_cases: tuple[str, ...] = ()
    """Node ids of the failed and errored cases."""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["failing_cases"] = list(self.failing_cases)
        return out


def requirement_results(
    records: Iterable[CaseRecord], requirements: Iterable[Requirement]
) -> list[RequirementResult]:
    """One :class:`RequirementResult` per requirement, in the order given."""
    by_req: dict[str, list[CaseRecord]] = {}
    for rec in records:
        for rid in rec.requirements:
            by_req.setdefault(rid, []).append(rec)
    out: list[RequirementResult] = []
    for req in requirements:
        cases = by_req.get(req.id, [])
        counts = {o: sum(1 for c in cases if c.outcome == o) for o in OUTCOMES}
        out.append(
            RequirementResult(
                id=req.id,
                level=req.level,
                profile=req.profile,
                statement=req.statement,
                verdict=verdict_of(counts["passed"], counts["failed"], counts["skipped"], counts["errored"]),
                passed=counts["passed"],
                failed=counts["failed"],
                skipped=counts["skipped"],
                errored=counts["errored"],
                declined=sum(1 for c in cases if c.outcome == "skipped" and c.skip_kind == "declined"),
                failing_cases=tuple(c.nodeid for c in cases if c.outcome in ("failed", "errored")),
            )
        )
    return out


@dataclass
class Conformance:
    """Whether the implementation conforms to the profiles it declares (among those selected).

    It conforms when no declared MUST failed or errored, and none was skipped because the
    implementation declined its checks (``skipped``). A MUST without a case that ran for other
    reasons (``untested``: no test, or only tests of a codec the implementation does not declare)
    is reported but not held against the implementation.

    With a baseline (``--expected-failures``), the failed or errored MUSTs it lists are
    ``expected_failures`` instead, and a listed entry that now passes (``stale_baseline``) fails
    the run. A run stopped early (``--max-fail``, ``--fail-fast``: ``cut_short``) never conforms.
    """

    declared_profiles: tuple[str, ...]
    failed: tuple[str, ...] = ()
    errored: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    untested: tuple[str, ...] = ()
    passed: tuple[str, ...] = ()
    expected_failures: tuple[str, ...] = ()
    stale_baseline: tuple[str, ...] = ()
    """The baseline entries (a requirement or case id) that no longer fail."""
    cut_short: str | None = None
    """Why the run stopped before every case ran, if it did."""

    @property
    def conforms(self) -> bool:
        return not (self.failed or self.errored or self.skipped or self.stale_baseline or self.cut_short)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}
        out["conforms"] = self.conforms
        return out


def conformance(
    results: Iterable[RequirementResult],
    declared_profiles: Iterable[str],
    *,
    expected: Iterable[str] = (),
    stale: Iterable[str] = (),
    cut_short: str | None = None,
) -> Conformance:
    """Grade the MUST requirements of ``declared_profiles`` (pass only the selected profiles' results).

    ``expected``: requirement ids whose failure a baseline expects; ``stale``: baseline entries
    that no longer fail; ``cut_short``: why the run stopped early.
    """
    declared = tuple(declared_profiles)
    expected_ids = set(expected)
    buckets: dict[str, list[str]] = {
        v: [] for v in ("passed", "failed", "errored", "skipped", "untested", "expected")
    }
    for r in results:
        if r.level == "MUST" and r.profile in declared:
            verdict: str = "untested" if r.verdict == "skipped" and not r.declined else r.verdict
            if verdict in ("failed", "errored") and r.id in expected_ids:
                verdict = "expected"
            buckets[verdict].append(r.id)
    return Conformance(
        declared_profiles=declared,
        failed=tuple(buckets["failed"]),
        errored=tuple(buckets["errored"]),
        skipped=tuple(buckets["skipped"]),
        untested=tuple(buckets["untested"]),
        passed=tuple(buckets["passed"]),
        expected_failures=tuple(buckets["expected"]),
        stale_baseline=tuple(stale),
        cut_short=cut_short,
    )


@dataclass
class RunInfo:
    """What was run, so a result can be reproduced (the seed) and compared."""

    impl_spec: str
    implementation: dict[str, Any]
    selected_profiles: tuple[str, ...]
    hypothesis_profile: str
    seed: int
    spec_version: str
    harness_version: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["selected_profiles"] = list(self.selected_profiles)
        return out
