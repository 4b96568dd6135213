"""symphony_conformance: the conformance harness for Symphony IPC implementations.

* :class:`Implementation` is what the suite drives; :func:`load_implementation` turns an
  ``--impl`` spec (``reference``, ``python:pkg.module:factory``, ``exec:COMMAND ARGS...``) into one;
  :class:`ReferenceImplementation` is the bundled reference in-process and
  :class:`ExecImplementation` any program speaking the driver protocol (``spec/driver/``).
* The suite is :mod:`symphony_conformance.suite`, driven by the pytest plugin
  (``pytest --pyargs symphony_conformance.suite``) or by ``symphony-conformance run``.
* :class:`CaseRecord`, :class:`RequirementResult` and :func:`requirement_results` are the results.

The adapters, the driver client and the results are imported on first use, so the pytest
plugin (loaded in every pytest session) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._impl import (
    CODECS,
    PROFILES,
    Capabilities,
    ImplBroken,
    Implementation,
    ImplError,
    ImplInfo,
    ImplSkipped,
    MessageData,
)
from ._resources import fixtures_dir, spec_dir

if TYPE_CHECKING:
    from ._adapters import (
        ImplementationLoadError,
        ReferenceImplementation,
        driven_profiles,
        load_implementation,
    )
    from ._driver_client import ExecImplementation
    from ._results import (
        CaseRecord,
        Conformance,
        RequirementResult,
        RunInfo,
        conformance,
        requirement_results,
        verdict_of,
    )

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "ImplementationLoadError": "._adapters",
    "ReferenceImplementation": "._adapters",
    "load_implementation": "._adapters",
    "driven_profiles": "._adapters",
    "ExecImplementation": "._driver_client",
    "CaseRecord": "._results",
    "Conformance": "._results",
    "RequirementResult": "._results",
    "RunInfo": "._results",
    "conformance": "._results",
    "requirement_results": "._results",
    "verdict_of": "._results",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "CODECS",
    "Capabilities",
    "CaseRecord",
    "Conformance",
    "ExecImplementation",
    "ImplBroken",
    "ImplError",
    "ImplInfo",
    "ImplSkipped",
    "Implementation",
    "ImplementationLoadError",
    "MessageData",
    "PROFILES",
    "ReferenceImplementation",
    "RequirementResult",
    "RunInfo",
    "__version__",
    "conformance",
    "driven_profiles",
    "fixtures_dir",
    "load_implementation",
    "requirement_results",
    "spec_dir",
    "verdict_of",
]
