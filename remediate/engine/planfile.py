"""Saved plans (``plan --out``): what was approved, against what state, sealed with a hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from remediate.engine.backups import write_durably
from remediate.engine.changes import JsonValue
from remediate.engine.fingerprint import Fingerprint
from remediate.errors import InputError, Refused
from remediate.model import iso, utc

PLAN_FORMAT = "remediate.plan/1"


@dataclass(frozen=True, slots=True)
class SavedPlan:
    playbook: str
    parameters: dict[str, str]
    options: JsonValue
    organisation: str
    source: dict[str, JsonValue]
    created: datetime
    selection: JsonValue
    fingerprints: dict[str, Fingerprint]
    changes: list[JsonValue]
    # For the change ticket of a saved plan (``remediate show PLAN``); absent from older plans.
    findings: list[JsonValue] = field(default_factory=list)
    manual_actions: list[str] = field(default_factory=list)
    rehearsed_s: dict[str, float] = field(default_factory=dict)
    manual_steps: list[str] = field(default_factory=list)
    deletes: list[int] = field(default_factory=list)  # per change: objects it deletes
    sha256: str = ""  # as read from the file (not part of the body it seals)

    def body(self) -> dict[str, JsonValue]:
        return {
            "format": PLAN_FORMAT,
            "playbook": self.playbook,
            "parameters": dict(self.parameters),
            "options": self.options,
            "organisation": self.organisation,
            "source": dict(self.source),
            "created": iso(self.created),
            "selection": self.selection,
            "fingerprints": dict(self.fingerprints),
            "changes": list(self.changes),
            "findings": list(self.findings),
            "manual_actions": list(self.manual_actions),
            "rehearsed_s": dict(self.rehearsed_s),
            "manual_steps": list(self.manual_steps),
            "deletes": list(self.deletes),
        }


def seal(body: dict[str, JsonValue]) -> str:
    """sha256 over the canonical JSON of everything but the hash itself."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def write_plan(plan: SavedPlan, path: Path) -> str:
    """Write the plan sealed with its sha256, which is returned (the change ticket names it)."""
    body = plan.body()
    body["sha256"] = sealed = seal(plan.body())
    write_durably(path, json.dumps(body, indent=1, ensure_ascii=False) + "\n")
    return sealed


def read_plan(path: Path) -> SavedPlan:
    """A plan file, refused (exit 3) if it was edited after it was written."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"cannot read the plan: {error}", target=str(path),
                         hint="write one with: remediate plan PLAYBOOK ... --out FILE") from None
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        raise InputError(f"is not a {PLAN_FORMAT} plan file", target=str(path),
                         hint="write one with: remediate plan PLAYBOOK ... --out FILE")
    claimed = data.pop("sha256", None)
    if claimed != seal(data):
        raise Refused("the plan file was changed after it was written (its sha256 no longer "
                      "matches)", target=str(path),
                      hint="plan again and have the new plan approved")
    try:
        return SavedPlan(
            playbook=str(data["playbook"]),
            parameters={str(k): str(v) for k, v in dict(data["parameters"]).items()},
            options=data["options"],
            organisation=str(data["organisation"]),
            source=dict(data["source"]),
            created=utc(str(data["created"])),
            selection=data["selection"],
            fingerprints={str(k): dict(v) for k, v in dict(data["fingerprints"]).items()},
            changes=list(data["changes"]),
            findings=list(data.get("findings") or []),
            manual_actions=[str(text) for text in data.get("manual_actions") or []],
            rehearsed_s={str(k): float(v) for k, v in dict(data.get("rehearsed_s") or {}).items()},
            manual_steps=[str(step) for step in data.get("manual_steps") or []],
            deletes=[int(count) for count in data.get("deletes") or []],
            sha256=str(claimed),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InputError(f"is missing or mangles {error}", target=str(path)) from None
