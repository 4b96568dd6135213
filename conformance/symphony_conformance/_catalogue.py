"""The entry shape shared by the catalogues of seeded-fault implementations loaded with ``--impl``
on one wire-level profile (:mod:`.security_mutants`, :mod:`.node_mutants`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ._impl import Implementation


@dataclass(frozen=True)
class ImplMutant:
    """One seeded fault: what it breaks and how to load it. Subclasses set :attr:`profile`."""

    name: str
    breaks: tuple[str, ...]
    """The requirement ids a run of :attr:`profile` must report as failed."""
    checks: tuple[str, ...]
    """The checks of the profile that catch it (for a quick ``-k`` run)."""
    description: str
    factory: Callable[[], Implementation] = field(compare=False, repr=False)
    kind: Literal["impl"] = "impl"
    profile: ClassVar[str] = ""
    """The profile whose checks must catch it."""

    @property
    def spec(self) -> str:
        """The ``--impl`` that loads it: the factory, by module and name."""
        return f"python:{self.factory.__module__}:{self.name}"

    @property
    def args(self) -> list[str]:
        """The ``symphony-conformance run`` options that load it."""
        return ["--impl", self.spec, "--profile", self.profile]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "breaks": list(self.breaks),
            "checks": list(self.checks),
            "description": self.description,
            "args": self.args,
        }
