"""pytest plugin entry point (``pytest11``); inert unless the conformance suite is selected.

In any pytest session this only adds the ``--symphony-*`` options, three markers and the
``symphony_*`` fixtures. Everything else acts on conformance tests alone, i.e. tests that use the
``symphony_case`` fixture (the suite in :mod:`symphony_conformance.suite`, or a user's own):

* collection: their requirement ids and profiles go into ``item.user_properties`` (so they reach
  the xdist controller), and ``--symphony-profile`` deselects the tests of other profiles;
* ``ImplSkipped`` skips a test; ``ImplBroken`` makes it an *error*, not a failure, with the
  evidence recorded;
* a :class:`ResultsCollector` turns the reports into :class:`~._results.CaseRecord` objects and
  prints the per-requirement table at the end.

Run the suite with ``pytest --pyargs symphony_conformance.suite --symphony-impl SPEC``; override
the ``symphony_impl`` fixture in a ``conftest.py`` to hand the suite an implementation object.
"""

from __future__ import annotations

import random
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from . import _spec
from ._impl import ImplBroken, Implementation
from ._results import (
    PROP_BROKEN,
    PROP_CALLS,
    PROP_FALSIFYING,
    PROP_IMPL,
    PROP_PROFILES,
    PROP_REQUIREMENTS,
    PROP_SKIP,
    PROP_STDERR,
    PROP_TRANSCRIPT,
    PROP_VECTOR,
    CaseRecord,
    Outcome,
    conformance,
    requirement_results,
)

if TYPE_CHECKING:
    import hypothesis

    from ._baseline import Baseline
    from ._case import SuiteCase
    from ._recording import RecordingImplementation

CASE_FIXTURE = "symphony_case"
_SEED_KEY = pytest.StashKey[int]()
_COLLECTOR_KEY = pytest.StashKey["ResultsCollector"]()
_RECORDERS_KEY = pytest.StashKey[dict[int, "RecordingImplementation"]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("symphony-conformance", "Symphony IPC conformance suite")
    group.addoption(
        "--symphony-impl",
        default="reference",
        metavar="SPEC",
        help="implementation under test: reference (default), python:pkg.module:factory, exec:COMMAND ARGS",
    )
    group.addoption(
        "--symphony-profile",
        action="append",
        default=[],
        metavar="PROFILE",
        help="run only the tests of this profile (repeatable); default: every profile",
    )
    group.addoption("--symphony-vectors", default=None, metavar="DIR", help="golden vectors directory")
    group.addoption(
        "--symphony-max-fail",
        default=None,
        type=int,
        metavar="N",
        help="stop after N failed or errored conformance cases (expected failures not counted)",
    )
    group.addoption(
        "--symphony-expected-failures",
        default=None,
        metavar="FILE",
        help="a baseline of expected failures (spec/baseline.schema.json), for --symphony-max-fail",
    )
    group.addoption(
        "--symphony-hypothesis-profile",
        default="default",
        metavar="NAME",
        help="property test settings: quick, default, ci, thorough (or a registered Hypothesis profile)",
    )
    group.addoption("--symphony-seed", default=None, type=int, metavar="N", help="seed of the property tests")
    group.addoption(
        "--symphony-timeout",
        default=10.0,
        type=float,
        metavar="SECONDS",
        help="per-operation timeout of exec: implementations",
    )
    group.addoption(
        "--symphony-transport",
        default=None,
        metavar="SPEC",
        help="profile transport: run the in-process transport checks on this transport maker "
        "(python:pkg.module:factory or python:path/file.py:factory) instead of the implementation's",
    )
    group.addoption(
        "--symphony-endpoint",
        default=None,
        metavar="ADDRESS",
        help="profile transport: check the running server at ADDRESS on the wire alone "
        "(unix:PATH, fifo:DIR, 'stdio:COMMAND ...'); nothing else runs",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requirement(*ids): the spec requirement ids a conformance test checks"
    )
    config.addinivalue_line(
        "markers", "symphony_codec(name): the codec a conformance test needs (json, msgpack)"
    )
    config.addinivalue_line("markers", "symphony_vector(id): the golden vector a conformance test checks")
    config.addinivalue_line(
        "markers", "symphony_deselect(reason): a conformance test that does not apply to this run"
    )
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    seed = config.getoption("symphony_seed")
    if workerinput is not None and "symphony_seed" in workerinput:
        seed = workerinput["symphony_seed"]
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    config.stash[_SEED_KEY] = int(seed)
    collector = ResultsCollector(config)
    config.stash[_COLLECTOR_KEY] = collector
    config.pluginmanager.register(collector, "symphony-conformance-results")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: every worker uses the controller's seed."""
    node.workerinput["symphony_seed"] = node.config.stash[_SEED_KEY]


def run_seed(config: pytest.Config) -> int:
    return config.stash[_SEED_KEY]


def results_collector(config: pytest.Config) -> ResultsCollector:
    return config.stash[_COLLECTOR_KEY]


def _requirement_ids(item: pytest.Item) -> tuple[str, ...]:
    ids: dict[str, None] = {}
    for mark in item.iter_markers("requirement"):
        for rid in mark.args:
            ids.setdefault(str(rid), None)
    return tuple(ids)


def is_conformance_item(item: pytest.Item) -> bool:
    return CASE_FIXTURE in getattr(item, "fixturenames", ())


def _empty_parameter_set(item: pytest.Item) -> bool:
    """The placeholder pytest collects for a parametrization without values."""
    mark = item.get_closest_marker("skip")
    reason = mark.kwargs.get("reason", "") if mark is not None else ""
    return isinstance(reason, str) and reason.startswith("got empty parameter set")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    selected = set(config.getoption("symphony_profile") or ())
    if selected:
        unknown = selected - set(_spec.profiles())
        if unknown:
            raise pytest.UsageError(
                f"--symphony-profile: unknown profile(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(_spec.profiles())}"
            )
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        if not is_conformance_item(item):
            keep.append(item)
            continue
        reqs = _requirement_ids(item)
        if not reqs and _empty_parameter_set(item):
            dropped.append(item)  # e.g. --symphony-vectors DIR with no vector of this kind
            continue
        if not reqs:
            raise pytest.UsageError(
                f"{item.nodeid}: a conformance test must declare @pytest.mark.requirement(...)"
            )
        try:
            profiles = _spec.profiles_of(reqs)
        except _spec.SpecError as e:
            raise pytest.UsageError(f"{item.nodeid}: {e}") from None
        item.user_properties.append((PROP_REQUIREMENTS, list(reqs)))
        item.user_properties.append((PROP_PROFILES, profiles))
        vector = item.get_closest_marker("symphony_vector")
        if vector is not None:
            item.user_properties.append((PROP_VECTOR, str(vector.args[0])))
        if (selected and not selected.intersection(profiles)) or item.get_closest_marker("symphony_deselect"):
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _find_broken(exc: BaseException | None) -> ImplBroken | None:
    if isinstance(exc, ImplBroken):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find_broken(inner)
            if found is not None:
                return found
    if exc is not None and exc.__cause__ is not None and exc.__cause__ is not exc:
        return _find_broken(exc.__cause__)
    return None


def _json_safe(value: Any, depth: int = 0) -> Any:
    """What can travel in user_properties (xdist serialises them) and into a JSON report."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if depth < 6 and isinstance(value, dict):
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()}
    if depth < 6 and isinstance(value, list | tuple):
        return [_json_safe(v, depth + 1) for v in value]
    return repr(value)[:2000]


def _record_broken(item: pytest.Item, broken: ImplBroken) -> None:
    evidence = {"message": str(broken), **broken.evidence}
    item.user_properties.append((PROP_BROKEN, _json_safe(evidence)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    if not is_conformance_item(item):
        return (yield)
    from ._impl import ImplSkipped

    try:
        return (yield)
    except ImplSkipped as e:
        item.user_properties.append((PROP_SKIP, "declined"))
        pytest.skip(f"the implementation declined: {e.reason}")
    except BaseException as e:
        broken = _find_broken(e)
        if broken is not None:
            _record_broken(item, broken)
        if not isinstance(e, pytest.skip.Exception):
            _record_failure_context(item, with_driver_evidence=broken is None)
        raise


def _record_failure_context(item: pytest.Item, *, with_driver_evidence: bool) -> None:
    """A failed case keeps the operations that failed (and, for a driver, its last exchange)."""
    from ._recording import RecordingImplementation, encode_calls

    case = getattr(item, "funcargs", {}).get(CASE_FIXTURE)
    recorder = getattr(case, "impl", None)
    if not isinstance(recorder, RecordingImplementation):
        return
    try:
        failing, of_example = recorder.failure_calls()
        calls = encode_calls(failing, example=of_example)
    except Exception as e:  # never let the evidence hide the failure
        calls = [{"op": "?", "actual": {"raised": f"cannot record the calls: {e!r}"}}]
    if calls:
        item.user_properties.append((PROP_CALLS, calls))
    if not with_driver_evidence:
        return  # an ImplBroken's evidence holds the exchange and the stderr tail already
    if hasattr(type(recorder.inner), "stderr_tail"):
        import time

        time.sleep(0.05)  # a driver's stderr is read by a thread, which may be a line behind
    try:
        exchange = getattr(recorder.inner, "last_exchange", None)
        tail = getattr(recorder.inner, "stderr_tail", None)
    except Exception:  # pragma: no cover - a driver's properties do not raise
        return
    if exchange:
        item.user_properties.append((PROP_TRANSCRIPT, _json_safe(exchange)))
    if isinstance(tail, str) and tail:
        item.user_properties.append((PROP_STDERR, tail[-8000:]))


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    """A conformance test whose implementation broke is an error (E), not a failure (F)."""
    if report.when == "call" and report.failed and any(k == PROP_BROKEN for k, _ in report.user_properties):
        return "error", "E", ("ERROR", {"red": True})
    return None


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def symphony_impl(pytestconfig: pytest.Config) -> Iterator[Implementation]:
    """The implementation under test (``--symphony-impl``), closed at the end of the session.

    Override this fixture in a ``conftest.py`` to test an object built there.
    """
    from ._adapters import EndpointImplementation, load_implementation

    endpoint = pytestconfig.getoption("symphony_endpoint", None)
    impl: Implementation
    if endpoint:
        impl = EndpointImplementation(endpoint)
    else:
        impl = load_implementation(
            pytestconfig.getoption("symphony_impl"), timeout=pytestconfig.getoption("symphony_timeout")
        )
    try:
        yield impl
    finally:
        impl.close()


@pytest.fixture(scope="session")
def symphony_reference() -> Implementation:
    """The bundled reference, for differential checks."""
    from ._adapters import ReferenceImplementation

    return ReferenceImplementation()


@pytest.fixture(scope="session")
def symphony_hypothesis_settings(pytestconfig: pytest.Config) -> hypothesis.settings:
    from ._hypothesis import UnknownProfileError, settings_for

    try:
        return settings_for(pytestconfig.getoption("symphony_hypothesis_profile"))
    except UnknownProfileError as e:
        raise pytest.UsageError(str(e)) from None


def _impl_summary(impl: Implementation) -> dict[str, Any]:
    info = impl.info
    return {
        "name": info.name,
        "version": info.version,
        "language": info.language,
        "spec_version": info.spec_version,
        **info.capabilities.to_dict(),
    }


@pytest.fixture
def symphony_case(
    request: pytest.FixtureRequest,
    symphony_impl: Implementation,
    symphony_reference: Implementation,
    symphony_hypothesis_settings: hypothesis.settings,
) -> SuiteCase:
    """A conformance test's context; skips the test when the implementation does not declare
    the profiles of its requirements or the codec it needs."""

    item = request.node
    try:
        caps = symphony_impl.info.capabilities
    except ImplBroken as e:
        _record_broken(item, e)
        raise
    if not any(k == PROP_IMPL for k, _ in item.user_properties):
        item.user_properties.append((PROP_IMPL, _impl_summary(symphony_impl)))
    profiles = _spec.profiles_of(_requirement_ids(item))
    missing = [p for p in profiles if p not in caps.profiles]
    if missing:
        item.user_properties.append((PROP_SKIP, "capability"))
        pytest.skip(f"the implementation does not declare profile {', '.join(missing)}")
    codec_mark = item.get_closest_marker("symphony_codec")
    if codec_mark is not None:
        codec = str(codec_mark.args[0])
        if codec not in caps.codecs:
            item.user_properties.append((PROP_SKIP, "capability"))
            pytest.skip(f"the implementation does not declare codec {codec}")
    from ._recording import RecordedSuiteCase, RecordingImplementation

    recorders = request.config.stash.setdefault(_RECORDERS_KEY, {})
    recorder = recorders.get(id(symphony_impl))
    if recorder is None or recorder.inner is not symphony_impl:
        recorder = recorders[id(symphony_impl)] = RecordingImplementation(symphony_impl)
    recorder.begin_test()
    return RecordedSuiteCase(
        impl=recorder,
        reference=symphony_reference,
        settings=symphony_hypothesis_settings,
        seed=run_seed(request.config),
        user_properties=item.user_properties,
    )


# ---------------------------------------------------------------- results


def _longrepr_text(report: pytest.TestReport) -> str:
    try:
        return str(report.longreprtext)
    except Exception:  # pragma: no cover - longrepr of an exotic type
        return repr(report.longrepr)


def _short_message(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, lineno, reason)
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).removeprefix("Failed: ").splitlines()[0] if crash.message else ""
    text = _longrepr_text(report).strip().splitlines()
    return text[-1] if text else ""


class _Pending:
    __slots__ = (
        "broken",
        "duration",
        "falsifying",
        "longrepr",
        "message",
        "outcome",
        "props",
        "ran",
        "skip_kind",
    )

    def __init__(self, props: dict[str, Any]) -> None:
        self.props = props
        self.outcome: Outcome = "passed"
        self.duration = 0.0
        self.message = ""
        self.longrepr = ""
        self.broken: dict[str, Any] = {}
        self.falsifying: str | None = None
        self.skip_kind: Any = None
        self.ran = False  # a call report was seen (or setup failed or skipped)


class ResultsCollector:
    """Builds one :class:`CaseRecord` per conformance test from its setup/call/teardown reports
    (works on the xdist controller: it only reads the reports' ``user_properties``)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.records: list[CaseRecord] = []
        self._pending: dict[str, _Pending] = {}
        self.implementation: dict[str, Any] | None = None
        """What the implementation said about itself (name, version, profiles, codecs), once seen."""
        self.cut_short: str | None = None
        """Why the run stopped early (``--symphony-max-fail``), if it did."""
        self.unexpected_failures = 0
        self._max_fail: int | None = config.getoption("symphony_max_fail", None)
        self._session: pytest.Session | None = None
        self._baseline: Baseline | None = None
        path = config.getoption("symphony_expected_failures", None)
        if path:
            from ._baseline import BaselineError, load_baseline

            try:
                self._baseline = load_baseline(path)
            except BaselineError as e:
                raise pytest.UsageError(str(e)) from None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._session = session

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props: dict[str, Any] = dict(report.user_properties)
        if PROP_REQUIREMENTS not in props:
            return
        pending = self._pending.get(report.nodeid)
        if pending is None:
            pending = self._pending[report.nodeid] = _Pending(props)
        pending.props.update(props)
        pending.duration += report.duration
        if report.when == "call" or report.failed or report.skipped:
            pending.ran = True
        if PROP_BROKEN in props:
            pending.broken = props[PROP_BROKEN]
        if PROP_IMPL in props:
            self.implementation = props[PROP_IMPL]
        if PROP_FALSIFYING in props:
            pending.falsifying = str(props[PROP_FALSIFYING])
        if report.failed:
            errored = report.when != "call" or PROP_BROKEN in props
            if pending.outcome != "errored":
                pending.outcome = "errored" if errored else "failed"
                pending.message = _short_message(report)
                pending.longrepr = _longrepr_text(report)[-6000:]
        elif report.skipped and pending.outcome == "passed":
            pending.outcome = "skipped"
            pending.message = _short_message(report)
            pending.skip_kind = props.get(PROP_SKIP)
        if report.when == "teardown":
            self._finish(report.nodeid)

    def _finish(self, nodeid: str) -> None:
        p = self._pending.pop(nodeid, None)
        if p is None:
            return
        self.records.append(
            CaseRecord(
                nodeid=nodeid,
                outcome=p.outcome,
                requirements=tuple(p.props.get(PROP_REQUIREMENTS, ())),
                profiles=tuple(p.props.get(PROP_PROFILES, ())),
                vector_id=p.props.get(PROP_VECTOR),
                duration=round(p.duration, 6),
                message=p.message,
                longrepr=p.longrepr,
                evidence=dict(p.broken),
                falsifying_example=p.falsifying,
                skip_kind=p.skip_kind if p.outcome == "skipped" else None,
                calls=list(p.props.get(PROP_CALLS) or []),
                transcript=list(p.props.get(PROP_TRANSCRIPT) or []),
                stderr_tail=str(p.props.get(PROP_STDERR) or ""),
            )
        )
        if p.outcome in ("failed", "errored"):
            self._count_failure(self.records[-1])

    def _count_failure(self, record: CaseRecord) -> None:
        """``--symphony-max-fail N``: stop once N cases failed that no baseline expects."""
        if self._baseline is not None:
            selected = set(self.config.getoption("symphony_profile") or ())
            reqs = _spec.requirements()
            in_scope = [r for r in record.requirements if not selected or reqs[r].profile in selected]
            if self._baseline.expects_case(record.nodeid, record.vector_id, in_scope):
                return
        self.unexpected_failures += 1
        if self._max_fail and self.unexpected_failures >= self._max_fail and self.cut_short is None:
            self.cut_short = (
                f"stopped after {self.unexpected_failures} failed case(s) (max-fail {self._max_fail})"
            )
            if hasattr(self.config, "workerinput"):
                return  # the xdist controller stops the run
            dsession = self.config.pluginmanager.getplugin("dsession")
            if dsession is not None:  # the xdist controller: it shuts the workers down
                dsession.shouldstop = self.cut_short
            elif self._session is not None:
                self._session.shouldfail = self.cut_short

    def pytest_sessionfinish(self) -> None:
        for nodeid, pending in list(self._pending.items()):
            if pending.ran:  # e.g. a crashed xdist worker sent no teardown report
                self._finish(nodeid)
            else:  # set up but never run: a run stopped early
                del self._pending[nodeid]

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.records or hasattr(self.config, "workerinput"):
            return
        if any(getattr(p, "symphony_cli", False) for p in self.config.pluginmanager.get_plugins()):
            return  # the symphony-conformance command prints its own table
        from ._render import requirement_table, summary_line

        reqs = _spec.requirements()
        from ._adapters import driven_profiles

        selected = set(self.config.getoption("symphony_profile") or ()) or set(driven_profiles())
        wanted = [r for r in reqs.values() if r.profile in selected]
        results = requirement_results(self.records, wanted)
        declared = [p for p in (self.implementation or {}).get("profiles", []) if p in selected]
        tr = terminalreporter
        tr.section("Symphony IPC conformance: verdict per requirement")
        tr.write_line(requirement_table(results, declared))
        tr.write_line("")
        tr.write_line(summary_line(results, conformance(results, declared)))
        tr.write_line(f"seed: {run_seed(self.config)} (rerun with --symphony-seed {run_seed(self.config)})")
