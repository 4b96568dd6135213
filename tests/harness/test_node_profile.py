"""The profile ``bus-node`` of the harness: the reference's node conforms (in process, behind its
driver, and a running ``symphony-ipc serve`` through ``--endpoint``), and every seeded fault of
``symphony_conformance.node_mutants`` (a proxy in front of the reference's node) fails the checks
of the requirement it breaks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from symphony_conformance import _spec, node_checks
from symphony_conformance._adapters import ReferenceImplementation
from symphony_conformance.node_checks import CHECKS, MULTI_ONLY, requirements_of, run_checks
from symphony_conformance.node_mutants import CATALOGUE

#: The requirements the wire checks reach: all but NODE-009 (a SHOULD about client libraries).
CHECKED = {f"NODE-{i:03d}" for i in (1, 2, 3, 4, 5, 6, 7, 8, 10)}


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
    return {r["id"]: r["verdict"] for r in results["requirements"] if r["profile"] == "bus-node"}


@pytest.fixture
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference answers in milliseconds: a mutant that withholds something is caught sooner."""
    monkeypatch.setattr(node_checks, "WAIT", 1.0)
    monkeypatch.setattr(node_checks, "SETTLE", 1.5)
    monkeypatch.setattr(node_checks, "QUIET", 0.2)


def test_checks_name_node_requirements() -> None:
    reqs = _spec.requirements()
    seen: set[str] = set()
    for name, check in CHECKS.items():
        ids = requirements_of(check)
        assert ids, name
        assert all(reqs[r].profile == "bus-node" for r in ids), (name, ids)
        seen.update(ids)
    assert seen >= CHECKED, CHECKED - seen
    assert set(CHECKS) >= MULTI_ONLY


def test_catalogue_shape() -> None:
    assert len(CATALOGUE) >= 10
    for name, m in CATALOGUE.items():
        assert m.name == name
        assert m.profile == "bus-node"
        assert m.breaks, m
        assert set(m.breaks) <= CHECKED, m
        assert set(m.checks) <= set(CHECKS), m
        assert m.args == [
            "--impl",
            f"python:symphony_conformance.node_mutants:{name}",
            "--profile",
            "bus-node",
        ]
        assert m.to_dict()["breaks"] == list(m.breaks)
    assert {r for m in CATALOGUE.values() for r in m.breaks} == CHECKED  # every requirement bites


def test_reference_passes_every_check_in_process() -> None:
    impl = ReferenceImplementation()
    try:
        address = impl.listen("unix", role="bus-node").address
        assert run_checks(address) == dict.fromkeys(CHECKS, "")
    finally:
        impl.close()


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_node_mutant_fails_its_checks(name: str, short_waits: None) -> None:
    """In process: the checks listed for the mutant fail on it, naming each requirement it breaks
    (the reference passes them: the test above)."""
    mutant = CATALOGUE[name]
    impl: Any = mutant.factory()
    try:
        address = impl.listen("unix", role="bus-node").address
        failures = {k: v for k, v in run_checks(address, mutant.checks).items() if v}
    finally:
        impl.close()
    named = {r for r in mutant.breaks for text in failures.values() if text.startswith(f"[{r}]")}
    assert named == set(mutant.breaks), (name, failures)


@pytest.fixture
def serve_node() -> Iterator[str]:
    """``symphony-ipc serve --listen unix:PATH``: a bus node in its own process."""
    directory = Path(tempfile.mkdtemp(prefix="sy-n-", dir="/tmp"))
    address = f"unix:{directory / 'node.sock'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "symphony_ipc.cli", "serve", "--listen", address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not (directory / "node.sock").exists():
            assert proc.poll() is None, "the node exited"
            assert time.monotonic() < deadline, "the node did not start"
            time.sleep(0.05)
        yield address
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize(
    "how",
    [
        pytest.param("in-process", id="in-process"),
        pytest.param("driver", id="driver"),
        pytest.param("endpoint", id="endpoint"),
    ],
)
def test_reference_conforms(tmp_path: Path, how: str, request: pytest.FixtureRequest) -> None:
    """``run --profile bus-node`` exits 0: in process on unix:, behind the reference's driver on
    fifo: (the listen command with role bus-node), and a running node given with --endpoint."""
    if how == "in-process":
        args = ["-k", "unix"]
    elif how == "driver":
        args = ["--impl", f"exec:{sys.executable} -m symphony_ipc.cli driver", "-k", "fifo"]
    else:
        args = ["--endpoint", request.getfixturevalue("serve_node")]
    rc, out, results = run_cli(tmp_path, "--profile", "bus-node", *args)
    assert rc == 0, out
    assert results is not None
    v = verdicts(results)
    assert "failed" not in v.values(), v
    assert "errored" not in v.values(), v
    assert {r for r, x in v.items() if x == "passed"} >= CHECKED, v


def test_node_mutant_run_exits_1_naming_the_requirement(tmp_path: Path) -> None:
    """Through the command line: ``run --profile bus-node`` with a mutant exits 1 and names it."""
    mutant = CATALOGUE["no_reply_flag"]
    rc, out, results = run_cli(tmp_path, *mutant.args, "-k", "unix-answer_form or unix-order")
    assert rc == 1, out
    assert results is not None
    v = verdicts(results)
    assert v["NODE-003"] == "failed", v
    assert v["NODE-005"] == "passed", v
    assert "FAILED NODE-003 " in out
    assert "DOES NOT CONFORM" in out
