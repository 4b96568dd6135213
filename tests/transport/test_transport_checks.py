"""Every reusable transport check, against every built-in transport (spec/transport.md).

``pipe`` is the data path of stdio (two anonymous pipes) in process; the stdio child process itself
is exercised by test_transport_endpoint.py.
"""

from __future__ import annotations

import pytest

from symphony_conformance import transport_checks as tc
from symphony_conformance.transport_checks import AddressMaker

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")


def test_handshake(maker: AddressMaker) -> None:
    tc.check_handshake(maker)


def test_echo(maker: AddressMaker) -> None:
    tc.check_echo(maker)


def test_ordering(maker: AddressMaker) -> None:
    tc.check_ordering(maker, frames=1000)


def test_max_size(maker: AddressMaker) -> None:
    tc.check_max_size(maker)


def test_oversize_refused(maker: AddressMaker) -> None:
    tc.check_oversize_refused(maker)


def test_split_writes(maker: AddressMaker) -> None:
    tc.check_split_writes(maker)


def test_peer_close(maker: AddressMaker) -> None:
    tc.check_peer_close(maker)


def test_slow_reader(maker: AddressMaker) -> None:
    tc.check_slow_reader(maker)


def test_many_clients(maker: AddressMaker) -> None:
    tc.check_many_clients(maker, clients=50, frames=20)


def test_close(maker: AddressMaker) -> None:
    tc.check_close(maker)


def test_no_leaks(maker: AddressMaker) -> None:
    tc.check_no_leaks(maker, cycles=1000)


def test_reconnection(maker: AddressMaker) -> None:
    tc.check_reconnection(maker, restarts=20)


def test_no_duplicates(maker: AddressMaker) -> None:
    tc.check_no_duplicates(maker, restarts=5)


def test_pool_reuse(maker: AddressMaker) -> None:
    tc.check_pool_reuse(maker, acquisitions=1000, workers=4)


def test_every_check_names_known_requirements() -> None:
    import json
    from pathlib import Path

    spec = Path(__file__).resolve().parents[2] / "spec" / "requirements.json"
    known = {r["id"] for r in json.loads(spec.read_text())["requirements"] if r["profile"] == "transport"}
    for check in [*tc.IN_PROCESS_CHECKS.values(), *tc.ENDPOINT_CHECKS.values()]:
        ids = tc.requirements_of(check)
        assert ids, check.__name__
        assert set(ids) <= known, (check.__name__, ids)
