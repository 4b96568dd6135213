"""``symphony-conformance run``: exit codes, verdicts, isolation, xdist, exec:, mutants, gating.

Runs go through a subprocess (as a user runs them) with quick Hypothesis settings and, where the
point is one profile, ``--profile``; the working directory holds a hostile pytest.ini and
conftest.py that a run must not pick up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from symphony_conformance.cli import main
from symphony_conformance.mutants import CATALOGUE

HOSTILE_INI = "[pytest]\naddopts = --no-such-option-anywhere\n"
HOSTILE_CONFTEST = "raise RuntimeError('the user conftest.py must not be loaded by a conformance run')\n"


def _env(extra_path: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS_", "COV_"))}
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(extra_path), env.get("PYTHONPATH", "")) if p)
    return env


def run_cli(
    tmp_path: Path, *args: str, extra_path: Path | None = None, timeout: float = 300
) -> tuple[int, str, str, dict[str, Any] | None]:
    """Run ``symphony-conformance ARGS --json`` in ``tmp_path``; (exit code, stdout, stderr, results)."""
    (tmp_path / "pytest.ini").write_text(HOSTILE_INI)
    (tmp_path / "conftest.py").write_text(HOSTILE_CONFTEST)
    out_json = tmp_path / "results.json"
    cmd = [sys.executable, "-m", "symphony_conformance.cli", *args]
    if args and args[0] == "run":
        cmd += ["--json", str(out_json)]
    proc = subprocess.run(
        cmd, cwd=tmp_path, env=_env(extra_path), capture_output=True, text=True, timeout=timeout, check=False
    )
    results = json.loads(out_json.read_text()) if out_json.exists() else None
    return proc.returncode, proc.stdout, proc.stderr, results


def verdicts(results: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["verdict"] for r in results["requirements"]}


def counts(results: dict[str, Any]) -> dict[str, tuple[int, int, int, int]]:
    return {r["id"]: (r["passed"], r["failed"], r["skipped"], r["errored"]) for r in results["requirements"]}


#: The message profiles, where the reference in process and behind the driver run the same cases
#: (the transport profile differs by design and is compared in test_transport_profile.py, which
#: also runs the main job, every profile).
MESSAGE_PROFILES = [
    arg
    for p in ("envelope", "codec-json", "codec-msgpack", "priority", "ttl", "versioning")
    for arg in ("--profile", p)
]


def test_reference_in_process_passes_and_exec_driver_agrees(tmp_path: Path) -> None:
    """The message profiles pass; the reference behind the driver protocol (exec:) gets the same
    verdicts and the same counts with the same seed."""
    a, b = tmp_path / "in-process", tmp_path / "exec"
    a.mkdir()
    b.mkdir()
    rc, out, err, inproc = run_cli(
        a, "run", *MESSAGE_PROFILES, "--hypothesis-profile", "quick", "--seed", "4242"
    )
    assert rc == 0, out[-3000:] + err[-3000:]
    assert inproc is not None
    assert "CONFORMS" in out
    assert "ENV-001" in out
    assert inproc["conformance"]["conforms"] is True
    assert inproc["run"]["seed"] == 4242
    assert all(v == "passed" for rid, v in verdicts(inproc).items() if rid != "ENV-015")
    assert len(inproc["cases"]) > 500

    driver = f"exec:{sys.executable} -m symphony_ipc.cli driver"
    rc, out, err, over_exec = run_cli(
        b, "run", *MESSAGE_PROFILES, "--impl", driver, "--hypothesis-profile", "quick", "--seed", "4242"
    )
    assert rc == 0, out[-3000:] + err[-3000:]
    assert over_exec is not None
    assert over_exec["run"]["implementation"]["name"] != inproc["run"]["implementation"]["name"]
    assert verdicts(over_exec) == verdicts(inproc)
    assert counts(over_exec) == counts(inproc)


def test_two_workers(tmp_path: Path) -> None:
    rc, out, err, results = run_cli(
        tmp_path,
        "run",
        "-n",
        "2",
        "--profile",
        "priority",
        "--profile",
        "ttl",
        "--hypothesis-profile",
        "quick",
    )
    assert rc == 0, out[-3000:] + err[-3000:]
    assert results is not None
    assert {r["profile"] for r in results["requirements"]} == {"priority", "ttl"}
    assert all(r["verdict"] == "passed" for r in results["requirements"])


#: Mutants a property test catches too (with its failing example); every mutant of the catalogue is
#: run by ``symphony-conformance selftest`` (tests/harness/test_gate_selftest.py).
PROPERTY_CAUGHT = (
    "lifo_within_priority",
    "response_without_correlation_id",
    "ttl_expired_at_boundary",
    "uppercase_uuids_in_json",
)


@pytest.mark.parametrize("name", PROPERTY_CAUGHT)
def test_mutant_is_caught_and_named(tmp_path: Path, name: str) -> None:
    mutant = CATALOGUE[name]
    rc, out, err, results = run_cli(
        tmp_path,
        "run",
        "--impl",
        mutant.impl_spec,
        "--profile",
        mutant.profile,
        "--hypothesis-profile",
        "quick",
    )
    assert rc == 1, out[-3000:] + err[-3000:]
    assert results is not None
    for rid in mutant.breaks:
        assert verdicts(results)[rid] == "failed"
        assert rid in results["conformance"]["failed"]
        assert f"FAILED {rid} " in out  # named in the details under the table
    assert "DOES NOT CONFORM" in out
    failed_properties = [
        c
        for c in results["cases"]
        if c["outcome"] == "failed"
        and c["nodeid"].startswith(("suite/test_properties.py", "suite/test_differential.py"))
    ]
    assert failed_properties  # a property test catches it too, not only the vectors
    assert all(c["falsifying_example"] for c in failed_properties)


ENVELOPE_JSON_ONLY = textwrap.dedent(
    """
    from dataclasses import replace

    from symphony_conformance import Capabilities, ImplBroken, ImplSkipped, ReferenceImplementation


    class EnvelopeJsonOnly(ReferenceImplementation):
        @property
        def info(self):
            caps = Capabilities(frozenset({"envelope", "codec-json"}), frozenset({"json"}))
            return replace(super().info, name="envelope+json only", capabilities=caps)


    class Misbehaving(ReferenceImplementation):
        def expects_response(self, message_type):
            raise ImplBroken("the driver crashed", {"stderr_tail": "Segmentation fault"})

        def is_compatible(self, a, b):
            raise ImplSkipped("versions are not implemented")


    def envelope_json_only():
        return EnvelopeJsonOnly()


    def misbehaving():
        return Misbehaving()
    """
)


def test_undeclared_codec_is_skipped_not_failed(tmp_path: Path) -> None:
    (tmp_path / "my_impls.py").write_text(ENVELOPE_JSON_ONLY)
    rc, out, err, results = run_cli(
        tmp_path,
        "run",
        "--impl",
        "python:my_impls:envelope_json_only",
        "--profile",
        "envelope",
        "--profile",
        "codec-msgpack",
        "-k",
        "msgpack",
        "--hypothesis-profile",
        "quick",
        extra_path=tmp_path,
    )
    assert rc == 0, out[-3000:] + err[-3000:]
    assert results is not None
    cases = results["cases"]
    assert cases
    assert all(c["outcome"] == "skipped" and c["skip_kind"] == "capability" for c in cases)
    assert any("does not declare codec msgpack" in c["message"] for c in cases)
    assert any("does not declare profile codec-msgpack" in c["message"] for c in cases)
    assert results["conformance"]["declared_profiles"] == ["envelope"]
    assert verdicts(results)["COD-101"] == "skipped"
    assert "not declared" in out


def test_broken_is_errored_and_declined_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "my_impls.py").write_text(ENVELOPE_JSON_ONLY)
    rc, out, err, results = run_cli(
        tmp_path,
        "run",
        "--impl",
        "python:my_impls:misbehaving",
        "--profile",
        "envelope",
        "--profile",
        "versioning",
        "-k",
        "expects or compatib",
        "--hypothesis-profile",
        "quick",
        extra_path=tmp_path,
    )
    assert rc == 1, out[-3000:] + err[-3000:]
    assert results is not None
    assert verdicts(results)["ENV-008"] == "errored"
    assert verdicts(results)["VER-002"] == "skipped"
    assert "ENV-008" in results["conformance"]["errored"]
    assert "VER-002" in results["conformance"]["skipped"]
    errored = [c for c in results["cases"] if c["outcome"] == "errored"]
    assert errored
    assert all(c["evidence"]["stderr_tail"] == "Segmentation fault" for c in errored)
    declined = [c for c in results["cases"] if c["skip_kind"] == "declined"]
    assert declined
    assert all("versions are not implemented" in c["message"] for c in declined)
    summary = next(line for line in out.splitlines() if " in " in line and "error" in line)
    assert "failed" not in summary  # pytest counts them as errors, not failures


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--impl", "nonsense"], "unknown form"),
        (["--impl", "python:no_such_module_xyz:make"], "cannot import"),
        (["--impl", f"exec:{sys.executable} -c 'import sys; sys.exit(3)'"], "--impl"),
        (["--profile", "no-such-profile"], "unknown profile"),
        (["--hypothesis-profile", "no-such-profile"], "unknown Hypothesis profile"),
        (["--vectors", "/nonexistent/vectors"], "does not exist"),
        (["-n", "0"], "-n"),
    ],
)
def test_harness_errors_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    """Errors found before the suite starts: one line on stderr, exit 2 (in process: cheap)."""
    assert main(["run", "--profile", "priority", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("symphony-conformance: error: ")


def test_undriven_profile_is_a_harness_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A profile of the spec the harness does not drive (every one is driven now: one is hidden)."""
    from symphony_conformance._impl import PROFILES

    monkeypatch.setattr(
        "symphony_conformance._adapters.PROFILES", tuple(p for p in PROFILES if p != "bus-node")
    )
    assert main(["run", "--profile", "bus-node"]) == 2
    err = capsys.readouterr().err
    assert "does not drive that profile yet" in err


def test_nothing_collected_is_a_harness_error(tmp_path: Path) -> None:
    rc, out, err, results = run_cli(tmp_path, "run", "--profile", "priority", "-k", "no_test_has_this_name")
    assert rc == 2, out[-2000:] + err[-2000:]
    assert "no conformance test was collected" in err
    assert results is None
