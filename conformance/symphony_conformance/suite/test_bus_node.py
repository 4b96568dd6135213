"""The profile ``bus-node`` (spec/bus.md section 14): a running bus node checked on the wire.

* ``test_node_check[SCHEME-CHECK]``: each check of
  :data:`~symphony_conformance.node_checks.CHECKS` against the bus node the implementation starts
  on each scheme it offers (``listen(scheme, role="bus-node")``: in process, or the driver's
  ``listen`` command with ``"role": "bus-node"``), or against the node ``--endpoint`` names. The
  harness is the client, written from the spec: it builds and reads every message as JSON. On
  ``stdio:`` every connection is a node of its own, so the checks that need a second connection
  to the same node do not run there.
"""

from __future__ import annotations

from typing import Any, NoReturn

import pytest

from .._case import SuiteCase
from .._impl import TRANSPORTS
from .._results import PROP_SKIP
from ..node_checks import CHECKS, MULTI_ONLY, NotOffered, requirements_of
from ._support import EndpointCache

ROLE = "bus-node"


def _skip_capability(case: SuiteCase, reason: str) -> NoReturn:
    case.user_properties.append((PROP_SKIP, "capability"))
    pytest.skip(reason)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "node_check" not in metafunc.fixturenames:
        return
    config = metafunc.config
    endpoint = config.getoption("symphony_endpoint", None)
    plugged = config.getoption("symphony_transport", None)
    endpoint_scheme = str(endpoint).partition(":")[0] if endpoint else None
    params = []
    for scheme in TRANSPORTS:
        for name, check in CHECKS.items():
            why = None
            if plugged and not endpoint:
                why = "--transport: the in-process checks of the plugged-in transport"
            elif endpoint_scheme is not None and scheme != endpoint_scheme:
                why = f"--endpoint is on {endpoint_scheme}:"
            elif scheme == "stdio" and name in MULTI_ONLY:
                why = "a stdio node serves the one connection of its parent"
            marks: list[Any] = [pytest.mark.requirement(*requirements_of(check))]
            if why:
                marks.append(pytest.mark.symphony_deselect(why))
            params.append(pytest.param((scheme, name), id=f"{scheme}-{name}", marks=marks))
    metafunc.parametrize("node_check", params)


@pytest.fixture(scope="session")
def symphony_nodes() -> EndpointCache:
    """The implementation's bus nodes, one per scheme."""
    return EndpointCache(ROLE)


def test_node_check(
    symphony_case: SuiteCase, node_check: tuple[str, str], symphony_nodes: EndpointCache
) -> None:
    scheme, name = node_check
    if scheme not in symphony_case.capabilities.transports:
        _skip_capability(symphony_case, f"the implementation offers no endpoint on {scheme}:")
    endpoint = symphony_nodes.get(symphony_case.impl, scheme)
    try:
        CHECKS[name](endpoint.address, scheme != "stdio")
    except NotOffered as e:
        _skip_capability(symphony_case, str(e))
