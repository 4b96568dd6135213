"""The profile ``bus`` of the harness: the reference in process and behind the driver conforms,
bus mutants are caught naming their requirement, the driver's bus commands and the error table
come from the spec."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from symphony_conformance import _spec, spec_dir
from symphony_conformance import bus_testing as bt
from symphony_conformance._driver_client import BUS_OPS, COMMANDS, ExecImplementation, schema_errors
from symphony_conformance._impl import BusImplementation, ImplError
from symphony_conformance.bus_mutants import BUS_MUTANTS, IMPLEMENTATIONS
from symphony_conformance.cli import main
from symphony_conformance.suite.test_bus import MACHINE_REQUIREMENTS, machine_settings

DRIVER = f"exec:{sys.executable} -m symphony_ipc.cli driver"
SPEC = Path(spec_dir())
#: the requirements the targeted tests check (beside the machine)
TARGETED = ("BUS-004", "BUS-005", "BUS-014", "BUS-021", "BUS-029", "BUS-030", "BUS-040", "BUS-043", "BUS-046")


def run(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    report = tmp_path / "report.json"
    out = io.StringIO()
    rc = main(["run", "--profile", "bus", "--seed", "7", *args, "--report-json", str(report)], out=out)
    return rc, json.loads(report.read_text())


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["verdict"] for r in report["requirements"]}


def test_the_reference_conforms_in_process(tmp_path: Path) -> None:
    rc, report = run(tmp_path, "--hypothesis-profile", "quick")
    assert rc == 0
    v = verdicts(report)
    bus = [r for r in _spec.requirements().values() if r.profile == "bus"]
    assert len(bus) == 46
    assert all(v[r.id] == "passed" for r in bus), {r.id: v[r.id] for r in bus if v[r.id] != "passed"}


def test_the_reference_conforms_through_the_driver(tmp_path: Path) -> None:
    """The targeted tests through ``symphony-ipc driver`` (the machine: the next test, shorter)."""
    rc, report = run(tmp_path, "--impl", DRIVER, "-k", "not state_machine")
    assert rc == 0
    passed = {rid for rid, v in verdicts(report).items() if v == "passed"}
    assert {r for r in TARGETED} <= passed


def test_the_state_machine_runs_through_the_driver() -> None:
    impl = ExecImplementation([sys.executable, "-m", "symphony_ipc.cli", "driver"])
    try:
        bt.run_state_machine(
            impl.new_bus, settings=bt.settings_for("quick", max_examples=6, derandomize=True)
        )
        assert impl.restarts == 0
    finally:
        impl.close()


@pytest.mark.parametrize("name", ["fifo_ignores_priority", "bus_request_never_times_out"])
def test_a_bus_mutant_is_caught_naming_its_requirement(tmp_path: Path, name: str) -> None:
    mutant = BUS_MUTANTS[name.removeprefix("bus_")]
    rc, report = run(
        tmp_path, "--impl", f"python:symphony_conformance.bus_mutants:{name}", "--hypothesis-profile", "quick"
    )
    assert rc == 1
    v = verdicts(report)
    primary = mutant.breaks[0]
    assert v[primary] == "failed"
    machine = next(c for c in report["cases"] if c["nodeid"].endswith(f"[machine-{primary}]"))
    assert machine["outcome"] == "failed"
    assert machine["message"].startswith(f"{primary}: ")
    # the machine stopped at that violation: its other requirements are not checked, not passed
    others = [c for c in report["cases"] if "[machine-" in c["nodeid"] and c is not machine]
    assert others
    assert {c["outcome"] for c in others} == {"skipped"}


def test_the_ci_profile_runs_at_least_200_sequences() -> None:
    assert machine_settings("ci").max_examples >= 200
    assert machine_settings("quick").max_examples < machine_settings("default").max_examples
    assert machine_settings("my-own-profile").max_examples == machine_settings("default").max_examples


def test_the_mutants_are_loadable_implementations() -> None:
    assert set(IMPLEMENTATIONS) == {f"bus_{n}" for n in BUS_MUTANTS}
    impl = IMPLEMENTATIONS["bus_leaky_backpressure"]()
    assert isinstance(impl, BusImplementation)
    assert "leaky_backpressure" in impl.info.name
    assert "bus" in impl.info.capabilities.profiles


def test_the_machine_requirements_are_bus_musts() -> None:
    reqs = _spec.requirements()
    assert all(reqs[r].profile == "bus" and reqs[r].level == "MUST" for r in MACHINE_REQUIREMENTS)


def test_the_error_table_is_read_from_the_spec() -> None:
    table = _spec.error_table()
    assert table["BACKPRESSURE"] == ("resource", True)
    assert table["REQUEST_TIMEOUT"] == ("timeout", True)
    assert table["ENDPOINT_CLOSED"] == ("delivery", True)
    assert table["INVALID_PROTOCOL_VERSION"] == ("version", False)
    assert table["RATE_LIMITED"] == ("resource", True)  # spec/security.md
    assert set(_spec.ERROR_TABLE) == set(_spec.error_table("protocol.md"))
    assert len(_spec.ERROR_TABLE) == 10
    envelope = json.loads((SPEC / "driver" / "envelope.schema.json").read_text())
    codes = set(envelope["$defs"]["error_code"]["enum"])
    bus_codes = set(_spec.error_table("bus.md")) | set(_spec.ERROR_TABLE)
    assert bus_codes <= codes  # a driver can report every bus code


def test_every_bus_command_has_a_schema() -> None:
    envelope = json.loads((SPEC / "driver" / "envelope.schema.json").read_text())
    for op in BUS_OPS:
        cmd = f"bus_{op}"
        assert cmd in COMMANDS
        assert cmd in envelope["$defs"]["command"]["enum"]
        assert (SPEC / "driver" / f"{cmd}.schema.json").exists()
    assert schema_errors("bus_send", "request", {"cmd": "bus_send", "seq": 1, "message": {}})
    assert not schema_errors("bus_stats", "request", {"cmd": "bus_stats", "seq": 1})
    assert schema_errors("bus_stats", "response", {"seq": 1, "ok": True, "result": {"stats": {}}})


def test_the_driver_bus_refuses_with_the_spec_codes() -> None:
    impl = ExecImplementation([sys.executable, "-m", "symphony_ipc.cli", "driver"])
    try:
        bus = impl.new_bus()
        with pytest.raises(ImplError) as info:
            bus.configure(
                {"max_pending": 0, "dlq_max": 1, "history_max": 1, "max_attempts": 1, "request_timeout_ns": 0}
            )
        assert (info.value.code, info.value.category, info.value.recoverable) == (
            "INVALID_OPERATION",
            "validation",
            True,
        )
        bus.register("a")
        with pytest.raises(ImplError) as info:
            bus.register("a")
        assert info.value.code == "INVALID_OPERATION"
        assert bus.stats()["pending_by_endpoint"] == {"a": 0}
        fresh = impl.new_bus()  # bus_reset: nothing registered
        assert fresh.stats()["pending_by_endpoint"] == {}
    finally:
        impl.close()
