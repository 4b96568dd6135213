"""The driver protocol's schemas (spec/driver/) are valid 2020-12 schemas, resolve offline, accept
the README's example transcript and reject what the README says is wrong."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from symphony_conformance import spec_dir
from symphony_conformance._driver_client import COMMANDS, SCHEMA_BASE, _registry, schema_errors

DRIVER = spec_dir() / "driver"
SCHEMAS = sorted(DRIVER.glob("*.schema.json"))
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node" / "driver.mjs"


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_schema_is_valid_2020_12_with_its_id(path: Path) -> None:
    schema = load(path)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_BASE + path.name


def test_one_schema_per_command_with_request_result_response() -> None:
    names = {p.name for p in SCHEMAS}
    assert names == {f"{c}.schema.json" for c in COMMANDS} | {"envelope.schema.json"}
    for command in COMMANDS:
        assert set(load(DRIVER / f"{command}.schema.json")["$defs"]) == {"request", "result", "response"}


def refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for k, v in node.items() if k not in ("const", "enum") for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_every_reference_resolves_offline(path: Path) -> None:
    schema = load(path)
    resolver = _registry(DRIVER).resolver(base_uri=schema["$id"])
    found = refs(schema)
    assert found
    for ref in found:
        assert resolver.lookup(ref).contents is not None


# ---------------------------------------------------------------- the README's transcript


def transcript() -> list[tuple[str, str]]:
    text = (DRIVER / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```text\n(.*?)```", text, re.S)
    assert block, "the README has no example transcript"
    return [(line[0], line[2:]) for line in block.group(1).splitlines()]


def test_transcript_alternates_and_validates() -> None:
    lines = transcript()
    assert [d for d, _ in lines] == ["→", "←"] * (len(lines) // 2)
    kinds = set()
    for (_, req_line), (_, resp_line) in zip(lines[::2], lines[1::2], strict=True):
        req, resp = json.loads(req_line), json.loads(resp_line)
        cmd = req["cmd"]
        assert resp["seq"] == req["seq"]
        if cmd in COMMANDS:
            assert schema_errors(cmd, "request", req) == []
            assert schema_errors(cmd, "response", resp) == []
        else:  # the unknown command, answered errored
            assert "errored" in resp
            assert schema_errors("shutdown", "response", resp) == []
        kinds.add(next(k for k in ("result", "error", "skipped", "errored") if k in resp))
    assert kinds == {"result", "error", "skipped", "errored"}
    assert [json.loads(line)["seq"] for d, line in lines if d == "→"] == list(range(len(lines) // 2))


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")
def test_transcript_is_what_the_example_driver_says() -> None:
    lines = transcript()
    stdin = "".join(line + "\n" for d, line in lines if d == "→")
    node = shutil.which("node")
    assert node is not None
    run = subprocess.run([node, str(EXAMPLE)], input=stdin, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    got = [json.loads(line) for line in run.stdout.splitlines()]
    want = [json.loads(line) for d, line in lines if d == "←"]
    got[0]["result"]["language"] = want[0]["result"]["language"]  # names the node version
    assert got == want


# ---------------------------------------------------------------- what the schemas reject

OK_DECODE = {"seq": 2, "ok": True, "result": {"message": {"header": {}, "payload": None, "metadata": {}}}}


@pytest.mark.parametrize(
    ("command", "part", "instance"),
    [
        ("decode", "response", {**OK_DECODE, "skipped": {"reason": "x"}}),  # two kinds at once
        ("decode", "response", {"seq": 2, "ok": True}),  # no result
        ("decode", "response", {**OK_DECODE, "extra": 1}),
        ("decode", "response", {**OK_DECODE, "seq": -1}),
        ("decode", "response", {"seq": 2, "ok": True, "result": {"message": "not a message"}}),
        ("decode", "response", {"seq": 2, "ok": False, "error": {"code": "OOPS", "message": "m"}}),
        ("decode", "response", {"seq": 2, "ok": False, "error": {"code": "SERIALIZATION"}}),
        ("decode", "response", {"seq": 2, "errored": {"context": {}}}),
        ("decode", "response", {"seq": 2, "skipped": {"reason": ""}}),
        ("encode", "response", {"seq": 2, "ok": True, "result": {"data_b64": "not base64!"}}),
        ("order", "response", {"seq": 2, "ok": True, "result": {"order": [0, -1]}}),
        ("is_expired", "response", {"seq": 2, "ok": True, "result": {"expired": "no"}}),
        ("hello", "response", {"seq": 0, "ok": True, "result": {"name": "x"}}),
        (
            "hello",
            "request",
            {
                "cmd": "hello",
                "seq": 1,
                "harness": {"name": "h", "version": "1"},
                "driver_protocol": 1,
                "spec_version": "1.0.0",
            },
        ),
        ("decode", "request", {"cmd": "decode", "seq": 2, "codec": "json", "data_b64": "", "x": 1}),
        ("decode", "request", {"cmd": "encode", "seq": 2, "codec": "json", "data_b64": ""}),
        ("decode", "request", {"cmd": "decode", "seq": 2, "codec": "cbor", "data_b64": ""}),
        ("clock", "request", {"cmd": "clock", "seq": 1, "now": "2025-01-02T03:04:05.1Z"}),
        ("clock", "request", {"cmd": "clock", "seq": 1, "now": "2025-01-02T03:04:05+00:00"}),
        (
            "receive",
            "request",
            {
                "cmd": "receive",
                "seq": 1,
                "codec": "json",
                "data_b64": "",
                "receiver_version": {"major": 65536, "minor": 0},
            },
        ),
        ("build", "request", {"cmd": "build", "seq": 1, "fields": {"colour": "red"}}),
    ],
)
def test_schemas_reject(command: str, part: str, instance: dict[str, Any]) -> None:
    assert schema_errors(command, part, instance)


@pytest.mark.parametrize(
    ("command", "part", "instance"),
    [
        ("decode", "response", OK_DECODE),
        ("decode", "response", {"seq": 2, "errored": {"message": "boom", "context": {"stack": "…"}}}),
        ("encode", "response", {"seq": 2, "ok": True, "result": {"data_b64": "", "extra": 1}}),
        ("build", "request", {"cmd": "build", "seq": 1, "fields": {"ttl": None, "payload": [1]}}),
        ("build", "request", {"cmd": "build", "seq": 1, "fields": {"priority": 1.5, "ttl": {"secs": -1}}}),
        ("clock", "request", {"cmd": "clock", "seq": 1, "now": "2025-01-02T03:04:05.123456789Z"}),
        ("shutdown", "response", {"seq": 9, "ok": True, "result": {}}),
    ],
)
def test_schemas_accept(command: str, part: str, instance: dict[str, Any]) -> None:
    assert schema_errors(command, part, instance) == []
