"""``symphony-ipc ping`` measures round trips against a bus node as well as an echo endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

CLI = [sys.executable, "-m", "symphony_ipc.cli"]


def test_ping_against_a_bus_node() -> None:
    with tempfile.TemporaryDirectory(prefix="sy-", dir="/tmp") as d:
        path = os.path.join(d, "node.sock")
        node = subprocess.Popen([*CLI, "serve", "--listen", f"unix:{path}"], stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(path):
                if node.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the node did not start: {node.communicate()[1]!r}")
                time.sleep(0.01)
            out = subprocess.run(
                [*CLI, "ping", f"unix:{path}", "-n", "50"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert out.returncode == 0, out.stderr
            assert "n=50" in out.stdout
            assert "median" in out.stdout
        finally:
            node.terminate()
            node.communicate(timeout=30)
