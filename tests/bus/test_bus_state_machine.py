"""The shipped state machine (symphony_conformance.bus_testing) against the reference bus."""

from __future__ import annotations

import unittest

import pytest

from symphony_conformance import bus_testing as bt
from symphony_conformance._impl import ImplError

# 200 sequences, as a CI run of a third-party bus would use; derandomized so the run is the
# same on every machine (a seed-dependent flake would be a bug in the model or the bus).
CI = bt.settings_for("ci", derandomize=True)


def test_the_reference_passes_the_ci_profile() -> None:
    bt.run_state_machine(bt.ReferenceBus, settings=CI)


def test_make_test_case_gives_a_runnable_unittest_case() -> None:
    case = bt.make_test_case(bt.ReferenceBus, settings=bt.settings_for("quick", derandomize=True))
    assert issubclass(case, unittest.TestCase)
    result = unittest.TextTestRunner(stream=open("/dev/null", "w"), verbosity=0).run(  # noqa: SIM115
        unittest.defaultTestLoader.loadTestsFromTestCase(case)
    )
    assert result.wasSuccessful()
    assert result.testsRun == 1


def test_the_reference_adapter_is_a_bus_under_test() -> None:
    assert isinstance(bt.ReferenceBus(), bt.BusUnderTest)


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown profile"):
        bt.settings_for("nope")


def test_a_violation_names_its_requirement() -> None:
    err = bt.violation("BUS-027", "out of order")
    assert isinstance(err, bt.BusViolation)
    assert isinstance(err, AssertionError)
    assert str(err) == "BUS-027: out of order"
    assert type(err).requirement == "BUS-027"
    assert type(bt.violation("BUS-027", "again")) is type(err)
    assert type(bt.violation("BUS-040", "x")) is not type(err)


def test_model_and_reference_agree_on_a_hand_written_sequence() -> None:
    """A small scripted run through the machine's own checks, readable on its own."""
    limits = {"max_pending": 2, "dlq_max": 2, "history_max": 4, "max_attempts": 2, "request_timeout_ns": 10}
    bus, model = bt.ReferenceBus(), bt.BusModel(limits, bt.T0)
    bus.configure(limits)
    bus.set_clock(bt.T0)
    for name in ("a", "b", "c"):
        assert model.register(name).code is None
        bus.register(name)

    def message(n: int, mtype: str, source: str, target: str, priority: int = 0) -> dict[str, object]:
        return {
            "header": {
                "id": f"00000000-0000-4000-8000-{n:012x}",
                "correlation_id": None,
                "message_type": mtype,
                "source": source,
                "target": target,
                "timestamp": bt.format_rfc3339(bt.T0),
                "ttl": None,
                "priority": priority,
                "version": {"major": 1, "minor": 0},
            },
            "payload": n,
            "metadata": {},
        }

    def send(m: dict[str, object]) -> str | None:
        expected = model.send(m, None)
        try:
            bus.send(m)
            got = None
        except ImplError as e:
            got = e
        bt.check_error("send", expected, got)
        return expected.code

    codes = [
        send(message(1, "Event", "a", "b")),
        send(message(2, "Event", "a", "b", 100)),
        send(message(3, "Event", "a", "b")),
        send(message(4, "Request", "b", "c")),  # b has no room for the answer
        send(message(5, "Request", "a", "c")),
    ]
    assert codes == [None, None, "BACKPRESSURE", "BACKPRESSURE", None]
    model.set_clock(bt.T0 + 11)
    bus.set_clock(bt.T0 + 11)
    for name in ("a", "b"):
        _, expected, _ = model.deliver(name)
        bus.deliver(name)
        bt.check_received(name, expected, bus.received(name), [], 0)
        if name == "a":
            assert [r["message"]["payload"]["code"] for r in expected] == ["REQUEST_TIMEOUT"]
        else:
            assert [r["message"]["payload"] for r in expected] == [2, 1]  # priority first
    bt.check_stats(model, bus.stats())
    bt.check_dead_letters(model, bus.dead_letters())
