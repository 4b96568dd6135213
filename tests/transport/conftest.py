"""Fixtures of the transport tests: short temporary directories (a Unix socket path is at most
107 bytes, pytest's tmp_path can be longer) and a maker per built-in transport."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest

from symphony_conformance.transport_checks import AddressMaker

TRANSPORTS = ("memory", "pipe", "unix", "fifo")


@pytest.fixture
def short_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="sy-", dir="/tmp")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=TRANSPORTS)
def maker(request: pytest.FixtureRequest, short_dir: str) -> AddressMaker:
    return AddressMaker(request.param, short_dir)
