"""Generate spec/requirements.json from the requirement lines of spec/*.md.

A requirement line is ``- **ID** (LEVEL, profile) statement``; its section is the nearest heading.
Run ``python tools/gen_requirements.py`` after editing the prose; ``--check`` exits 1 when stale.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

SPEC = Path(__file__).resolve().parent.parent / "spec"
LINE = re.compile(r"^- \*\*([A-Z]{2,4}-\d{3})\*\* \((MUST|SHOULD|MAY), ([a-z0-9-]+)\) (.+)$")
HEADING = re.compile(r"^(#{1,4}) (.+)$")


def collect() -> list[dict[str, str]]:
    reqs: list[dict[str, str]] = []
    for md in sorted(SPEC.glob("*.md")):
        section = ""
        for line in md.read_text(encoding="utf-8").splitlines():
            if h := HEADING.match(line):
                section = h.group(2).strip()
            elif m := LINE.match(line):
                rid, level, profile, text = m.groups()
                reqs.append(
                    {
                        "id": rid,
                        "level": level,
                        "profile": profile,
                        "statement": text.split(". ")[0].rstrip(".") + ".",
                        "text": text,
                        "section": section,
                        "document": f"spec/{md.name}",
                    }
                )
    ids = [r["id"] for r in reqs]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise SystemExit(f"duplicate requirement ids: {sorted(dupes)}")
    return reqs


def render() -> str:
    doc = {
        "spec_version": "1.0.0",
        "generated_from": "spec/*.md by tools/gen_requirements.py",
        "requirements": collect(),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    out = SPEC / "requirements.json"
    text = render()
    if "--check" in sys.argv:
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            print("spec/requirements.json is stale: run python tools/gen_requirements.py")
            return 1
        return 0
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} ({len(json.loads(text)['requirements'])} requirements)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
