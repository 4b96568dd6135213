"""Hypothesis settings of the suite's property tests, and the runner they go through.

The harness's profiles are registered (as ``symphony-<name>``) only when the suite runs, and are
applied per test, never loaded globally: a pytest session that also runs the user's own
Hypothesis tests keeps the user's settings. Every property runs with a fixed seed and no example
database, so ``--symphony-seed N`` reproduces a run exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import hypothesis
from hypothesis import HealthCheck, Phase, given
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from ._impl import ImplBroken, ImplSkipped

#: Harness profile name -> max_examples. "quick" is for the harness's own tests.
PROFILES: Final[dict[str, int]] = {"quick": 5, "default": 25, "ci": 100, "thorough": 2000}
DEFAULT_PROFILE: Final = "default"


class UnknownProfileError(ValueError):
    pass


def register_profiles() -> None:
    """Register ``symphony-quick``, ``symphony-default``, ``symphony-ci`` and ``symphony-thorough``."""
    for name, examples in PROFILES.items():
        hypothesis.settings.register_profile(
            f"symphony-{name}",
            max_examples=examples,
            # "quick" (the harness's own tests) reports the first failing example, unshrunk.
            phases=[p for p in Phase if p is not Phase.shrink or name != "quick"],
            deadline=None,  # an out-of-process implementation's latency is not a property failure
            database=None,  # no .hypothesis/ folder in the user's directory; the seed reproduces
            print_blob=False,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.large_base_example,
            ],
        )


def settings_for(name: str) -> hypothesis.settings:
    """The settings of a harness profile, or of any Hypothesis profile registered under ``name``."""
    register_profiles()
    try:
        return hypothesis.settings.get_profile(f"symphony-{name}" if name in PROFILES else name)
    except InvalidArgument:
        raise UnknownProfileError(
            f"unknown Hypothesis profile {name!r}; the harness's are {', '.join(PROFILES)}"
        ) from None


class _Abort(BaseException):
    """Carries an ImplBroken or ImplSkipped out of Hypothesis without shrinking (a broken
    implementation may be slow to answer, and shrinking would ask it again and again)."""

    def __init__(self, inner: ImplBroken | ImplSkipped, value: Any) -> None:
        super().__init__(str(inner))
        self.inner = inner
        self.value = value


def falsifying_example(exc: BaseException) -> str | None:
    """The failing example Hypothesis noted on ``exc`` ("Falsifying example: ..." or, in newer
    versions, "Failing test case: ..."), with the notes after it, if any."""
    notes = getattr(exc, "__notes__", None) or []
    for i, note in enumerate(notes):
        if isinstance(note, str) and note.startswith(("Falsifying", "Failing test case")):
            return "\n".join(str(n) for n in notes[i:])
    return None


def run_property(
    check: Callable[[Any], None],
    strategy: SearchStrategy[Any],
    *,
    settings: hypothesis.settings,
    seed: int,
    on_falsifying: Callable[[str], None] | None = None,
) -> None:
    """Run ``check`` on values of ``strategy`` under ``settings`` with ``seed``.

    :class:`ImplSkipped` and :class:`ImplBroken` stop the run at once (no shrinking) and are
    re-raised, an ImplBroken with the input that broke the implementation in its evidence.
    """

    @hypothesis.seed(seed)
    @settings
    @given(strategy)
    def prop(value: Any) -> None:
        try:
            check(value)
        except (ImplBroken, ImplSkipped) as e:
            raise _Abort(e, value) from None

    try:
        prop()
    except _Abort as abort:
        inner = abort.inner
        if isinstance(inner, ImplBroken):
            inner.evidence.setdefault("input", repr(abort.value)[:2000])
        raise inner from None
    except BaseException as e:
        text = falsifying_example(e)
        if text is not None and on_falsifying is not None:
            on_falsifying(text)
        raise
