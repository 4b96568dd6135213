"""symphony_conformance: the conformance harness for Symphony IPC implementations."""

from __future__ import annotations

from ._resources import fixtures_dir, spec_dir

__version__ = "0.1.0"

__all__ = ["__version__", "fixtures_dir", "spec_dir"]
