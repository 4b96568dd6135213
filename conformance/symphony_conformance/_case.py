"""What a conformance test receives (the ``symphony_case`` fixture): the implementation under
test, the reference for differential checks, and the run's Hypothesis settings and seed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
from hypothesis.strategies import SearchStrategy

from ._hypothesis import run_property
from ._impl import Capabilities, Implementation
from ._results import PROP_FALSIFYING


@dataclass
class SuiteCase:
    impl: Implementation
    reference: Implementation
    settings: hypothesis.settings
    seed: int
    user_properties: list[tuple[str, object]] = field(default_factory=list)

    @property
    def capabilities(self) -> Capabilities:
        return self.impl.info.capabilities

    def check_property(self, check: Callable[[Any], None], strategy: SearchStrategy[Any]) -> None:
        """Run a property of the implementation under the run's settings and seed."""
        run_property(
            check,
            strategy,
            settings=self.settings,
            seed=self.seed,
            on_falsifying=lambda text: self.user_properties.append((PROP_FALSIFYING, text)),
        )
