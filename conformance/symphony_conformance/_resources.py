"""Locate the spec and the golden vectors, installed or in a source checkout.

``SYMPHONY_SPEC_DIR`` and ``SYMPHONY_FIXTURES_DIR`` point at another copy (e.g. a newer suite).
"""

from __future__ import annotations

import os
from functools import cache
from importlib import resources
from pathlib import Path


def _locate(name: str, env: str) -> Path:
    override = os.environ.get(env)
    if override:
        path = Path(override)
        if not path.is_dir():
            raise FileNotFoundError(f"{env}={override!r} is not a directory")
        return path
    packaged = Path(str(resources.files("symphony_conformance") / "_data" / name))
    if packaged.is_dir():
        return packaged
    source = Path(__file__).resolve().parents[2] / name  # a source checkout or editable install
    if source.is_dir():
        return source
    raise FileNotFoundError(f"cannot find the {name}/ directory; set {env}")


@cache
def spec_dir() -> Path:
    return _locate("spec", "SYMPHONY_SPEC_DIR")


@cache
def fixtures_dir() -> Path:
    return _locate("fixtures", "SYMPHONY_FIXTURES_DIR")
