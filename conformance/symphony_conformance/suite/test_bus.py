"""The profile ``bus`` (spec/bus.md): the shipped state machine, and targeted tests.

* ``test_bus_state_machine[BUS-NNN]``: the Hypothesis state machine of
  :mod:`symphony_conformance.bus_testing` drives the implementation's buses
  (:meth:`~symphony_conformance._impl.BusImplementation.new_bus`, one per sequence: in process,
  or the driver's ``bus_*`` commands) against its model of the spec, on virtual time, once per run;
  each requirement the machine checks has its own case, which fails when the machine's violation
  names it. The machine stops at its first violation: the cases of the other requirements are
  then skipped (not checked), never passed. Effort follows the run's Hypothesis profile: quick 25
  sequences, default 60, ci 200, thorough 2,000 (sequences of up to 40 operations).
* the other tests check, one scenario each, the requirements the machine does not reach.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Final

import hypothesis
import pytest

from .. import _spec
from .._case import SuiteCase
from .._hypothesis import _Abort, falsifying_example
from .._impl import ImplBroken, ImplError, ImplSkipped, MessageData
from .._results import PROP_FALSIFYING
from ..bus_testing import (
    NS,
    PROFILES,
    T0,
    BusUnderTest,
    BusViolation,
    format_rfc3339,
    make_state_machine,
    settings_for,
)
from ._support import case, expect_error, expect_ok, fail, short

#: The requirements the state machine checks (its model's outcomes and its checks name them).
MACHINE_REQUIREMENTS: Final = (
    "BUS-001",
    "BUS-002",
    "BUS-003",
    "BUS-006",
    "BUS-007",
    "BUS-008",
    "BUS-009",
    "BUS-010",
    "BUS-011",
    "BUS-012",
    "BUS-013",
    "BUS-017",
    "BUS-018",
    "BUS-019",
    "BUS-020",
    "BUS-022",
    "BUS-023",
    "BUS-024",
    "BUS-027",
    "BUS-028",
    "BUS-029",
    "BUS-031",
    "BUS-032",
    "BUS-034",
    "BUS-035",
    "BUS-037",
    "BUS-038",
    "BUS-039",
    "BUS-040",
    "BUS-041",
    "BUS-042",
    "BUS-046",
)
MAX_SIZE: Final = 16 * 1024 * 1024
LIMITS: Final = {
    "max_pending": 100,
    "dlq_max": 10,
    "history_max": 10,
    "max_attempts": 3,
    "request_timeout_ns": NS,
}


# ---------------------------------------------------------------- the state machine


class _Guarded:
    """A bus under test whose ImplBroken/ImplSkipped stop the machine at once (no shrinking: a
    broken implementation would be asked again and again)."""

    def __init__(self, inner: BusUnderTest) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except (ImplBroken, ImplSkipped) as e:
                raise _Abort(e, name) from None

        return call


def new_bus(impl: Any) -> BusUnderTest:
    make = getattr(impl, "new_bus", None)
    if make is None:
        raise ImplSkipped("the implementation offers no bus (BusImplementation.new_bus)")
    bus: BusUnderTest = make()
    return bus


def machine_settings(profile: str) -> hypothesis.settings:
    """The machine's settings for a run's Hypothesis profile (unknown names: ``default``). A
    failing sequence is always shrunk, even with ``quick``: the requirement a long sequence seems
    to break is not always the one its minimal form breaks."""
    return settings_for(profile if profile in PROFILES else "default")


_RUNS: dict[tuple[int, int, str], BaseException | None] = {}


def run_machine(impl: Any, seed: int, profile: str) -> BaseException | None:
    """The machine's outcome against ``impl`` (run once per implementation, seed and profile):
    None, a :class:`BusViolation`, or what stopped it."""
    inner = getattr(impl, "inner", impl)  # the recorder's implementation: one run per session
    key = (id(inner), seed, profile)
    if key in _RUNS:
        return _RUNS[key]
    machine = make_state_machine(lambda: _Guarded(new_bus(inner)))
    outcome: BaseException | None = None
    try:
        from hypothesis.stateful import get_state_machine_test

        test = hypothesis.seed(seed)(get_state_machine_test(machine, settings=machine_settings(profile)))
    except ImportError:  # pragma: no cover - an older Hypothesis: reproducible, not seeded
        from hypothesis.stateful import run_state_machine_as_test

        def test() -> None:
            run_state_machine_as_test(machine, settings=machine_settings(profile))

    try:
        test()
    except _Abort as abort:
        outcome = abort.inner
    except Exception as e:  # a BusViolation, or a bug of an in-process implementation
        outcome = e
    _RUNS[key] = outcome
    return outcome


@pytest.mark.parametrize("requirement", [case(r, reqs=(r,), name="machine") for r in MACHINE_REQUIREMENTS])
def test_bus_state_machine(symphony_case: SuiteCase, requirement: str, pytestconfig: pytest.Config) -> None:
    """Random sequences of every bus operation, checked against the model of spec/bus.md."""
    profile = pytestconfig.getoption("symphony_hypothesis_profile")
    outcome = run_machine(symphony_case.impl, symphony_case.seed, profile)
    if outcome is None:
        return
    if isinstance(outcome, BusViolation):
        named = type(outcome).requirement
        if requirement == named or requirement in outcome.alternatives:
            example = falsifying_example(outcome)
            if example:
                symphony_case.user_properties.append((PROP_FALSIFYING, example))
            fail(f"{outcome}" + (f"\n{example}" if example else ""))
        pytest.skip(f"not checked: the state machine stopped at a violation of {named}")
    raise outcome


# ---------------------------------------------------------------- targeted tests


def _id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012x}"


class Scenario:
    """A fresh bus at T0 with limits, endpoints, and numbered messages."""

    def __init__(self, impl: Any, *endpoints: str, **limits: int) -> None:
        self.bus = new_bus(impl)
        self.n = 0
        expect_ok("configure", lambda: self.bus.configure({**LIMITS, **limits}))
        expect_ok("set_clock", lambda: self.bus.set_clock(T0))
        for name in endpoints:
            expect_ok(f"register({name})", partial(self.bus.register, name))

    def msg(
        self,
        mtype: str,
        source: str,
        target: str,
        *,
        priority: int = 0,
        ttl: tuple[int, int] | None = None,
        correlation_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        payload: Any = None,
        version: tuple[int, int] = (1, 0),
    ) -> MessageData:
        self.n += 1
        return {
            "header": {
                "id": _id(self.n),
                "correlation_id": correlation_id,
                "message_type": mtype,
                "source": source,
                "target": target,
                "timestamp": format_rfc3339(T0),
                "ttl": None if ttl is None else {"secs": ttl[0], "nanos": ttl[1]},
                "priority": priority,
                "version": {"major": version[0], "minor": version[1]},
            },
            "payload": {"n": self.n} if payload is None else payload,
            "metadata": metadata or {},
        }

    def send(self, m: MessageData) -> MessageData:
        expect_ok(f"send({short(m['header'])})", lambda: self.bus.send(m))
        return m

    def refused(self, code: str, m: MessageData) -> ImplError:
        return expect_error(code, f"send({short(m['header'])})", lambda: self.bus.send(m))

    def delivered(self, endpoint: str) -> list[dict[str, Any]]:
        expect_ok(f"deliver({endpoint})", lambda: self.bus.deliver(endpoint))
        return self.bus.received(endpoint)

    def stats(self) -> dict[str, Any]:
        return self.bus.stats()


def _ids(records: list[dict[str, Any]]) -> list[Any]:
    return [r["message"]["header"]["id"] for r in records]


def _check(requirement: str, ok: bool, what: str) -> None:
    if not ok:
        fail(f"{requirement}: {what}")


@pytest.mark.requirement("BUS-004")
def test_bus_ignores_payload_and_other_bus_keys(symphony_case: SuiteCase) -> None:
    """Other ``bus.`` keys and a ``bus.timeout_ns`` outside a Request are ignored; the payload
    is carried as it is, whatever it holds."""
    sc = Scenario(symphony_case.impl, "a", "b")
    odd = {"bus.timeout_ns": "not a number", "bus.other": {"x": [1, None]}, "app": True}
    sent = [
        sc.send(sc.msg("Event", "a", "b", metadata=odd, payload={"code": "NO_ROUTE", "target": "x"})),
        sc.send(sc.msg("Request", "a", "b", metadata={"bus.timeout_ns": NS, "bus.ack": "x"}, payload=None)),
    ]
    got = sorted((r["message"] for r in sc.delivered("b")), key=lambda m: str(m["header"]["id"]))
    _check("BUS-004", got == sent, f"delivered {short(got)}, sent {short(sent)}")


@pytest.mark.requirement("BUS-005", "BUS-006")
def test_bus_size_limit(symphony_case: SuiteCase) -> None:
    """More than 16 MiB of JSON is MESSAGE_TOO_LARGE on every path, before any other check; a
    message just under the limit is accepted."""
    sc = Scenario(symphony_case.impl, "a", "b")
    sc.bus.subscribe("b", "t")
    big = "x" * MAX_SIZE
    sc.refused("MESSAGE_TOO_LARGE", sc.msg("Event", "a", "b", payload=big))
    sc.refused("MESSAGE_TOO_LARGE", sc.msg("Event", "a", "topic:t", payload=big))
    sc.refused("MESSAGE_TOO_LARGE", sc.msg("Request", "x", "nowhere", payload=big, version=(2, 0)))
    sc.send(sc.msg("Event", "a", "b", payload="x" * (MAX_SIZE - 4096)))
    stats = sc.stats()
    _check("BUS-005", (stats.get("accepted"), stats.get("rejected")) == (1, 3), f"stats {short(stats)}")


@pytest.mark.requirement("BUS-014", "BUS-015", "BUS-016")
def test_bus_rules_match_in_order_and_add_each_endpoint_once(symphony_case: SuiteCase) -> None:
    """Filters, priority order, disabled rules, ``final``, and one copy per endpoint."""
    sc = Scenario(symphony_case.impl, "a", "b", "c", "d")
    rules = [
        {"id": "low", "destination": "c", "priority": 0, "source": "a*"},
        {"id": "high", "destination": "d", "priority": 5, "final": True, "topic": "t*"},
        {"id": "off", "destination": "b", "priority": 9, "enabled": False},
        {"id": "hb", "destination": "c", "priority": 1, "message_type": "Heartbeat"},
        {"id": "dup", "destination": "b", "priority": 2, "target": "b"},
    ]
    full = {
        "enabled": True,
        "final": False,
        "message_type": None,
        "source": None,
        "target": None,
        "topic": None,
    }
    for r in rules:
        expect_ok(f"add_rule({r['id']})", partial(sc.bus.add_rule, {**full, **r}))
    published = sc.send(sc.msg("Event", "a", "topic:t1"))  # high matches first and is final
    direct = sc.send(sc.msg("Event", "a", "b"))  # b directly and by 'dup': once; c by 'low'
    got = {name: _ids(sc.delivered(name)) for name in ("b", "c", "d")}
    want = {
        "b": [direct["header"]["id"]],
        "c": [direct["header"]["id"]],
        "d": [published["header"]["id"]],
    }
    if got["b"] != want["b"]:
        fail(f"BUS-014: b has a copy per address or rule naming it: {got['b']}, expected {want['b']}")
    if got != want:
        fail(f"BUS-016: the rules routed {got}, expected {want} (priority order, final, disabled)")


@pytest.mark.requirement("BUS-021")
def test_bus_request_reserves_room_for_its_answer(symphony_case: SuiteCase) -> None:
    sc = Scenario(symphony_case.impl, "a", "b", max_pending=1)
    req = sc.send(sc.msg("Request", "a", "b"))
    sc.refused("BACKPRESSURE", sc.msg("Event", "b", "a"))  # a's one slot is its answer's
    answer = sc.send(sc.msg("Response", "b", "a", correlation_id=req["header"]["id"]))
    got = sc.delivered("a")
    _check("BUS-021", [r["message"] for r in got] == [answer], f"a received {short(got)}")


@pytest.mark.requirement("BUS-025", "BUS-026")
def test_bus_one_answer_per_request_and_taps(symphony_case: SuiteCase) -> None:
    """A tap on Requests sees the request; the bus's own timeout goes to the requester alone;
    a late response is no second answer."""
    sc = Scenario(symphony_case.impl, "a", "b", "tap")
    rule = {"id": "tap", "destination": "tap", "priority": 0, "enabled": True, "final": False}
    rule |= {"message_type": "Request", "source": None, "target": None, "topic": None}
    expect_ok("add_rule(tap)", lambda: sc.bus.add_rule(rule))
    req = sc.send(sc.msg("Request", "a", "b", metadata={"bus.timeout_ns": 0}))
    expect_ok("set_clock", lambda: sc.bus.set_clock(T0 + 1))
    sc.send(sc.msg("Response", "b", "a", correlation_id=req["header"]["id"]))  # too late
    tapped = sc.delivered("tap")
    _check("BUS-026", _ids(tapped) == [req["header"]["id"]], f"the tap received {short(tapped)}")
    answers = sc.delivered("a")
    codes = [
        (r["message"]["header"]["source"], (r["message"].get("payload") or {}).get("code")) for r in answers
    ]
    _check("BUS-025", codes == [("bus:system", "REQUEST_TIMEOUT")], f"a received {short(answers)}")


@pytest.mark.requirement("BUS-030")
def test_bus_a_failed_attempt_is_retried(symphony_case: SuiteCase) -> None:
    sc = Scenario(symphony_case.impl, "a", "b")
    expect_ok("set_failing", lambda: sc.bus.set_failing("b", 1))
    m = sc.send(sc.msg("Event", "a", "b"))
    got = sc.delivered("b")
    stats = sc.stats()
    ok = got == [{"message": m, "attempt": 2}] and (stats.get("failed"), stats.get("delivered")) == (1, 1)
    _check("BUS-030", ok, f"received {short(got)}, stats {short(stats)}")


@pytest.mark.requirement("BUS-033")
def test_bus_endpoints_are_delivered_independently(symphony_case: SuiteCase) -> None:
    """An endpoint with undelivered copies holds back no other endpoint's delivery."""
    sc = Scenario(symphony_case.impl, "a", "b", "c")
    sc.send(sc.msg("Event", "c", "a"))
    sc.send(sc.msg("Event", "c", "a"))
    m = sc.send(sc.msg("Event", "c", "b"))
    got = sc.delivered("b")
    pending = sc.stats().get("pending_by_endpoint")
    _check(
        "BUS-033",
        _ids(got) == [m["header"]["id"]] and pending == {"a": 2, "b": 0, "c": 0},
        f"{got}, {pending}",
    )


@pytest.mark.requirement("BUS-036")
def test_bus_a_full_recipient_refuses_at_once(symphony_case: SuiteCase) -> None:
    """A wait of zero does not wait: BACKPRESSURE, nothing enqueued, nothing dropped silently."""
    sc = Scenario(symphony_case.impl, "a", "b", max_pending=1)
    first = sc.send(sc.msg("Event", "a", "b"))
    sc.refused("BACKPRESSURE", sc.msg("Event", "a", "b"))
    stats = sc.stats()
    ok = (stats.get("accepted"), stats.get("rejected"), stats.get("pending")) == (1, 1, 1)
    _check("BUS-036", ok and sc.bus.history() == [first], f"stats {short(stats)}")


@pytest.mark.requirement("BUS-043")
def test_bus_statistics_are_exactly_those_of_the_spec(symphony_case: SuiteCase) -> None:
    sc = Scenario(symphony_case.impl, "a", "b")
    sc.bus.subscribe("b", "t1")
    sc.send(sc.msg("Event", "a", "topic:t1"))
    sc.send(sc.msg("Event", "a", "b"))
    sc.send(sc.msg("Heartbeat", "x", "topic:t2"))
    stats = sc.stats()
    want = {
        "accepted": 3,
        "rejected": 0,
        "delivered": 0,
        "failed": 0,
        "dead_lettered": 0,
        "dlq_evicted": 0,
        "pending": 2,
        "outstanding_requests": 0,
        "per_topic": {"t1": 1, "t2": 1},
        "per_sender": {"a": 2, "x": 1},
        "pending_by_endpoint": {"a": 0, "b": 2},
    }
    _check("BUS-043", stats == want, f"stats are {short(stats, 600)}, expected {want}")


@pytest.mark.requirement("BUS-044")
def test_bus_limits_out_of_range_are_refused(symphony_case: SuiteCase) -> None:
    bus = new_bus(symphony_case.impl)
    for member, value in (
        ("max_pending", 0),
        ("max_attempts", 0),
        ("dlq_max", -1),
        ("history_max", -1),
        ("request_timeout_ns", -1),
    ):
        limits = {**LIMITS, member: value}
        expect_error("INVALID_OPERATION", f"configure({member}={value})", partial(bus.configure, limits))
    expect_ok(
        "configure(dlq_max=0, history_max=0)",
        lambda: bus.configure({**LIMITS, "dlq_max": 0, "history_max": 0}),
    )


@pytest.mark.requirement("BUS-045")
def test_bus_time_moves_only_with_the_clock(symphony_case: SuiteCase) -> None:
    """On a manual clock nothing times out or expires until the clock moves and the bus polls."""
    sc = Scenario(symphony_case.impl, "a", "b")
    sc.send(sc.msg("Request", "a", "b", metadata={"bus.timeout_ns": 0}))
    fresh = sc.send(sc.msg("Event", "a", "b", ttl=(0, 0)))
    expect_ok("set_clock(same instant)", lambda: sc.bus.set_clock(T0))
    _check("BUS-045", sc.stats().get("outstanding_requests") == 1, "a request timed out with no time passing")
    got = sc.delivered("b")
    _check(
        "BUS-045", fresh["header"]["id"] in _ids(got), f"a ttl-0 message expired at its own instant: {got}"
    )
    expect_ok("set_clock(+1 ns)", lambda: sc.bus.set_clock(T0 + 1))
    stats = sc.stats()
    _check("BUS-045", stats.get("outstanding_requests") == 0, f"the request did not time out: {short(stats)}")


@pytest.mark.requirement("BUS-029")
def test_bus_a_copy_that_expires_while_pending_is_a_dead_letter(symphony_case: SuiteCase) -> None:
    sc = Scenario(symphony_case.impl, "a", "b")
    stale = sc.send(sc.msg("Event", "a", "b", ttl=(0, 0)))
    expect_ok("set_clock(+1 ns)", lambda: sc.bus.set_clock(T0 + 1))
    got = sc.delivered("b")
    dead = [
        (d.get("message"), d.get("reason"), d.get("attempts"), d.get("recipient"))
        for d in sc.bus.dead_letters()
    ]
    _check("BUS-029", not got, f"an expired copy was delivered: {short(got)}")
    _check("BUS-029", dead == [(stale, "TTL_EXPIRED", 0, "b")], f"dead letters {short(dead)}")


@pytest.mark.requirement("BUS-040")
def test_bus_a_full_dead_letter_queue_evicts_its_oldest(symphony_case: SuiteCase) -> None:
    """Three copies dead-lettered (a rule to an endpoint that does not exist) into a queue of 2."""
    sc = Scenario(symphony_case.impl, "a", "b", dlq_max=2)
    rule = {"id": "ghost", "destination": "ghost", "priority": 0, "enabled": True, "final": False}
    rule |= {"message_type": None, "source": None, "target": None, "topic": None}
    expect_ok("add_rule(ghost)", lambda: sc.bus.add_rule(rule))
    sent = [sc.send(sc.msg("Event", "a", "b")) for _ in range(3)]
    dead = sc.bus.dead_letters()
    got = [(d.get("message"), d.get("reason"), d.get("recipient")) for d in dead]
    want = [(m, "NO_ROUTE", "ghost") for m in sent[1:]]
    if [g[1:] for g in got] != [w[1:] for w in want] or len(got) != 2:
        fail(f"BUS-040: expected the two newest NO_ROUTE dead letters (BUS-017), got {short(got)}")
    stats = sc.stats()
    ok = got == want and (stats.get("dead_lettered"), stats.get("dlq_evicted")) == (3, 1)
    _check("BUS-040", ok, f"dead letters {short(got)}, stats {short(stats)}: the oldest must go")


def _error_of(fn: Callable[[], Any]) -> ImplError | None:
    try:
        fn()
    except ImplError as e:
        return e
    return None


@pytest.mark.requirement("BUS-046")
def test_bus_errors_report_the_table(symphony_case: SuiteCase) -> None:
    """Each error's category and recoverable flag, when reported, are the spec's table's."""
    table: Mapping[str, tuple[str, bool]] = _spec.error_table()
    sc = Scenario(symphony_case.impl, "a", "b", max_pending=1)
    sc.send(sc.msg("Event", "a", "b"))
    induced = {
        "BACKPRESSURE": lambda: sc.bus.send(sc.msg("Event", "a", "b")),
        "NO_ROUTE": lambda: sc.bus.send(sc.msg("Event", "a", "nobody")),
        "INVALID_OPERATION": lambda: sc.bus.subscribe("nobody", "t"),
        "INVALID_ENDPOINT_ID": lambda: sc.bus.register("topic:x"),
        "TTL_EXPIRED": lambda: sc.bus.send(sc.msg("Event", "a", "a", ttl=(0, 0))),
        "INVALID_PROTOCOL_VERSION": lambda: sc.bus.send(sc.msg("Event", "a", "a", version=(2, 0))),
    }
    expect_ok("set_clock", lambda: sc.bus.set_clock(T0 + 1))  # the ttl-0 message is born expired
    checked = []
    for code, fn in induced.items():
        err = _error_of(fn)
        if err is not None and err.code == code:  # whether it should be refused: the others' job
            _table_check(code, err, table)
            checked.append(code)
    if not checked:
        pytest.skip("none of the induced errors was reported with its code: nothing to check")


def _table_check(code: str, err: ImplError, table: Mapping[str, tuple[str, bool]]) -> None:
    category, recoverable = table[code]
    if err.category is not None and err.category != category:
        fail(f"BUS-046: {code} reports category {err.category!r}; the spec's table says {category!r}")
    if err.recoverable is not None and err.recoverable is not recoverable:
        fail(f"BUS-046: {code} reports recoverable={err.recoverable!r}; the spec's table says {recoverable}")
