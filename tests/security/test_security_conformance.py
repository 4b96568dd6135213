"""The profile ``security`` of the harness: the reference conforms (in process, behind its driver,
and the TCP example through ``--transport``), and every seeded fault of
``symphony_conformance.security_mutants`` makes ``symphony-conformance run --profile security``
exit 1 naming the requirement it breaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from symphony_conformance._adapters import ReferenceImplementation
from symphony_conformance.security_checks import (
    CHECKS,
    NotObservable,
    SecurityConfig,
    WireTarget,
    requirements_of,
)
from symphony_conformance.security_mutants import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]


def run_cli(tmp_path: Path, *args: str) -> tuple[int, str, dict[str, Any] | None]:
    out_json = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "symphony_conformance.cli", "run", *args, "--json", str(out_json)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    results = json.loads(out_json.read_text()) if out_json.exists() else None
    return proc.returncode, proc.stdout + proc.stderr[-3000:], results


def verdicts(results: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["verdict"] for r in results["requirements"] if r["profile"] == "security"}


def test_every_check_names_security_requirements() -> None:
    for name, check in CHECKS.items():
        reqs = requirements_of(check)
        assert reqs, name
        assert all(r.startswith(("SEC-", "ROB-")) for r in reqs), (name, reqs)


def test_config_wire_form() -> None:
    cfg = SecurityConfig(handshake_timeout=0.5, max_connections=3, rate=4.0, burst=2, allow_uids=(7,))
    assert cfg.to_wire() == {
        "handshake_timeout": 0.5,
        "max_connections": 3,
        "rate": 4.0,
        "burst": 2,
        "allow_uids": [7],
    }
    assert SecurityConfig(secret=b"\x01" * 16).to_wire() == {"secret_hex": "01" * 16}
    assert SecurityConfig().to_wire() == {}


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["-k", "unix or robustness"], id="in-process"),
        pytest.param(
            # behind the driver: the listen requests with a security member, and a property
            [
                "--impl",
                f"exec:{sys.executable} -m symphony_ipc.cli driver",
                "-k",
                "fifo-rate_limit or fifo-connection_flood or fifo-peer_not_allowed or fifo-secret "
                "or fifo-slow_handshake or framing_robustness",
            ],
            id="driver",
        ),
        pytest.param(["--transport", f"python:{ROOT}/examples/tcp_transport.py:make"], id="tcp-transport"),
    ],
)
def test_reference_conforms(tmp_path: Path, args: list[str]) -> None:
    rc, out, results = run_cli(tmp_path, "--profile", "security", *args)
    assert rc == 0, out
    assert results is not None
    v = verdicts(results)
    assert "failed" not in v.values(), v
    assert sum(1 for x in v.values() if x == "passed") >= 5, v


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_security_mutant_fails_its_checks(name: str) -> None:
    """In process (fast): each check that catches the mutant raises an AssertionError naming the
    requirement; the same checks pass on the reference."""
    mutant = CATALOGUE[name]
    for impl_factory, broken in ((mutant.factory, True), (ReferenceImplementation, False)):
        impl = impl_factory()
        targets: dict[SecurityConfig, WireTarget] = {}

        def start(cfg: SecurityConfig, impl: Any = impl, targets: Any = targets) -> WireTarget:
            if cfg not in targets:
                wire = cfg.to_wire()
                ep = impl.listen("unix", security=wire) if wire else impl.listen("unix")
                targets[cfg] = WireTarget(ep.address, ep.pid, cfg)
            return targets[cfg]

        try:
            caught: set[str] = set()
            for check in mutant.checks:
                try:
                    CHECKS[check](start)
                except NotObservable:
                    continue
                except AssertionError as e:
                    if not broken:
                        raise AssertionError(f"{check} fails on the reference: {e}") from e
                    caught.update(rid for rid in mutant.breaks if rid in str(e))
            if broken:
                assert caught, f"{name} was not caught by {mutant.checks}"
                if os.geteuid() == 0 or name != "no_peer_check":
                    assert caught == set(mutant.breaks), (caught, mutant.breaks)
        finally:
            impl.close()


def test_security_mutant_run_exits_1_naming_the_requirement(tmp_path: Path) -> None:
    """Through the command line: ``run --profile security`` with a mutant exits 1 and names it."""
    mutant = CATALOGUE["no_rate_limit"]
    rc, out, results = run_cli(tmp_path, *mutant.args, "-k", "unix-rate_limit")
    assert rc == 1, out
    assert results is not None
    assert verdicts(results)["ROB-007"] == "failed"
    assert "FAILED ROB-007 " in out
    assert "DOES NOT CONFORM" in out
