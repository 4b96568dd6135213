"""The machine-readable spec the harness grades against: requirements, profiles and the error table.

Everything is read from ``spec/`` (see :mod:`._resources`), never from the reference
implementation, so a newer copy of the spec can be pointed at with ``SYMPHONY_SPEC_DIR``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal

from ._resources import spec_dir

Level = Literal["MUST", "SHOULD", "MAY"]

_ERROR_ROW = re.compile(r"^\| `([A-Z][A-Z_]*)` \| [^|]* \| `([a-z]+)` \| (true|false) \|")


@cache
def error_table(document: str | None = None) -> dict[str, tuple[str, bool]]:
    """code -> (category, recoverable), read from the error tables of ``spec/*.md`` (the rows
    ``| `CODE` | seed | `category` | true/false | ...``), or of one ``document`` (``protocol.md``).

    Read from the spec, never written down twice, so the harness cannot drift from it.
    """
    paths = [spec_dir() / document] if document else sorted(spec_dir().glob("*.md"))
    table: dict[str, tuple[str, bool]] = {}
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise SpecError(f"cannot read {path}: {e}") from None
        for line in text.splitlines():
            m = _ERROR_ROW.match(line)
            if m is not None:
                table.setdefault(m[1], (m[2], m[3] == "true"))
    if not table:
        raise SpecError(f"no error table in {', '.join(str(p) for p in paths)}")
    return table


def __getattr__(name: str) -> Any:
    """``ERROR_TABLE``: the table of spec/protocol.md section 2 (read lazily from the file)."""
    if name == "ERROR_TABLE":
        return error_table("protocol.md")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: The profile each codec's own requirements belong to.
CODEC_PROFILES: Final[dict[str, str]] = {"json": "codec-json", "msgpack": "codec-msgpack"}


class SpecError(Exception):
    """The spec files are missing or malformed: a harness error, not an implementation's fault."""


@dataclass(frozen=True)
class Requirement:
    id: str
    level: Level
    profile: str
    statement: str
    section: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "level": self.level,
            "profile": self.profile,
            "statement": self.statement,
            "section": self.section,
        }


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"missing spec file {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SpecError(f"cannot read {path}: {e}") from None


@cache
def requirements() -> dict[str, Requirement]:
    """All requirements of ``spec/requirements.json`` by id, in document order."""
    path = spec_dir() / "requirements.json"
    doc = _load_json(path)
    try:
        out: dict[str, Requirement] = {}
        for r in doc["requirements"]:
            if r["level"] not in ("MUST", "SHOULD", "MAY"):
                raise SpecError(f"{path}: {r['id']} has an unknown level {r['level']!r}")
            out[r["id"]] = Requirement(
                r["id"], r["level"], r["profile"], r["statement"], r.get("section", "")
            )
    except (KeyError, TypeError) as e:
        raise SpecError(f"{path} is not a requirements document: {e!r}") from None
    if not out:
        raise SpecError(f"{path} lists no requirements")
    return out


def profiles() -> list[str]:
    """The profiles named by the requirements, in first-appearance order."""
    seen: dict[str, None] = {}
    for r in requirements().values():
        seen.setdefault(r.profile, None)
    return list(seen)


def spec_version() -> str:
    doc = _load_json(spec_dir() / "requirements.json")
    return str(doc.get("spec_version", "unknown"))


@cache
def message_schema() -> dict[str, Any]:
    """``spec/message.schema.json`` (the JSON wire form of a message)."""
    schema = _load_json(spec_dir() / "message.schema.json")
    if not isinstance(schema, dict):
        raise SpecError("spec/message.schema.json is not a JSON object")
    return schema


def profiles_of(requirement_ids: tuple[str, ...] | list[str]) -> list[str]:
    """The distinct profiles of ``requirement_ids`` (unknown ids raise :class:`SpecError`)."""
    reqs = requirements()
    out: dict[str, None] = {}
    for rid in requirement_ids:
        req = reqs.get(rid)
        if req is None:
            raise SpecError(f"unknown requirement id {rid!r} (not in spec/requirements.json)")
        out.setdefault(req.profile, None)
    return list(out)
