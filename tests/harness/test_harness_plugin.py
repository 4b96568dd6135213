"""The pytest plugin: inert in unrelated sessions; the suite runs under a user's own pytest, with
``symphony_impl`` overridable from a rootdir conftest.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLAIN_TESTS = textwrap.dedent(
    """
    import pytest
    from hypothesis import given, settings, strategies as st


    def test_plain():
        assert 1 + 1 == 2


    @pytest.mark.requirement("not a spec id")  # someone else's marker of the same name
    def test_user_marker():
        pass


    @given(st.integers())
    def test_hypothesis_defaults_recorded(n):
        with open("defaults.txt", "w") as f:
            f.write(repr(settings.default))
    """
)


def _pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_plugin_is_inert_in_a_plain_session(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_plain.py").write_text(PLAIN_TESTS)
    # Hypothesis's own defaults depend on the environment (it loads a "ci" profile when $CI is
    # set), so the baseline is a run with the plugin disabled, compared with one with it loaded.
    without = _pytest(tmp_path, "-q", "-p", "no:symphony_conformance", "test_plain.py")
    assert without.returncode == 0, without.stdout + without.stderr
    baseline = (tmp_path / "defaults.txt").read_text()
    proc = _pytest(tmp_path, "-q", "test_plain.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout
    assert (tmp_path / "defaults.txt").read_text() == baseline
    assert "symphony" not in (proc.stdout + proc.stderr).lower()
    assert "conformance" not in proc.stdout.lower()


def test_plugin_adds_its_options_and_fixtures(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    help_text = _pytest(tmp_path, "--help").stdout
    for option in (
        "--symphony-impl",
        "--symphony-profile",
        "--symphony-vectors",
        "--symphony-hypothesis-profile",
        "--symphony-seed",
    ):
        assert option in help_text
    fixtures = _pytest(tmp_path, "--fixtures").stdout
    assert "symphony_impl" in fixtures


USER_CONFTEST = textwrap.dedent(
    """
    import pytest

    from symphony_conformance.mutants import lifo_within_priority


    @pytest.fixture(scope="session")
    def symphony_impl():
        impl = lifo_within_priority()
        yield impl
        impl.close()
    """
)


def test_suite_under_users_pytest_with_overridden_impl(tmp_path: Path) -> None:
    """``pytest --pyargs symphony_conformance.suite`` picks up the user's ``symphony_impl``
    (here a mutant breaking FIFO order), and the plugin prints the verdict table."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(USER_CONFTEST)
    proc = _pytest(
        tmp_path,
        "--pyargs",
        "symphony_conformance.suite",
        "--symphony-profile",
        "priority",
        "--symphony-hypothesis-profile",
        "quick",
        "--symphony-seed",
        "7",
        "-k",
        "test_ordering",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED" in proc.stdout
    assert "test_ordering[PRI-004]" in proc.stdout
    assert "1 failed, 1 passed" in proc.stdout
    assert "verdict per requirement" in proc.stdout
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line.startswith("PRI-")}
    assert rows["PRI-004"][3] == "failed"
    assert rows["PRI-003"][3] == "passed"
    assert "seed: 7" in proc.stdout
