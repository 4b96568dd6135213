"""Every seeded-fault bus is caught by the state machine, and the failure names its requirement."""

from __future__ import annotations

import hypothesis
import pytest

from symphony_conformance import bus_testing as bt
from symphony_conformance.bus_mutants import BUS_MUTANTS, BusMutant

# The ci profile's 200 sequences, derandomized (the same sequences on every machine), without
# the shrink phase: finding a fault takes a second, shrinking it tens. The state machine raises a
# requirement-specific BusViolation class, so the first failure already names its requirement.
FIND = bt.settings_for("ci", derandomize=True, phases=[hypothesis.Phase.generate])


@pytest.mark.parametrize("mutant", list(BUS_MUTANTS.values()), ids=list(BUS_MUTANTS))
def test_mutant_is_caught_naming_its_requirement(mutant: BusMutant) -> None:
    with pytest.raises(bt.BusViolation) as info:
        bt.run_state_machine(mutant.factory, settings=FIND)
    requirement = type(info.value).requirement
    assert requirement in mutant.breaks, f"{mutant.name} caught as {info.value}"
    assert str(info.value).startswith(f"{requirement}: ")


def test_catalogue_names_real_requirements() -> None:
    from symphony_conformance import _spec

    reqs = _spec.requirements()
    assert len(BUS_MUTANTS) >= 6
    for m in BUS_MUTANTS.values():
        assert m.breaks
        for rid in m.breaks:
            assert reqs[rid].profile == "bus", (m.name, rid)
        assert m.to_dict()["name"] == m.name


def test_a_shrunk_failure_keeps_its_requirement() -> None:
    """With shrinking (the shipped default), one cheap mutant: the minimal example still fails
    with the same requirement, because each requirement raises its own exception class."""
    settings = bt.settings_for("quick", derandomize=True, max_examples=60)
    with pytest.raises(bt.BusViolation) as info:
        bt.run_state_machine(BUS_MUTANTS["leaky_backpressure"].factory, settings=settings)
    assert type(info.value).requirement == "BUS-035"
