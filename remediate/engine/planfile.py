"""Saved plans (``plan --out``): what was approved, against what state, sealed with a hash."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from remediate import strictjson
from remediate.engine.backups import write_durably
from remediate.engine.changes import JsonValue
from remediate.engine.fingerprint import Fingerprint
from remediate.engine.step import Options
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


SIGNING_KEY_VARIABLE = "REMEDIATE_PLAN_KEY"


def seal(body: dict[str, JsonValue]) -> str:
    """sha256 over the canonical JSON of everything but the hash itself. It catches accidental
    edits only: anyone who edits the file can compute it again (a signature cannot be)."""
    return hashlib.sha256(_canonical(body)).hexdigest()


def _canonical(body: dict[str, JsonValue]) -> bytes:
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _signing_key() -> bytes | None:
    key = os.environ.get(SIGNING_KEY_VARIABLE, "")
    return key.encode("utf-8") if key else None


def _signature(key: bytes, body: dict[str, JsonValue]) -> str:
    return hmac.new(key, _canonical(body), hashlib.sha256).hexdigest()


def write_plan(plan: SavedPlan, path: Path) -> str:
    """The plan, sealed with its sha256 (returned: the change ticket names it) and, when
    $REMEDIATE_PLAN_KEY holds a key, signed with HMAC-SHA256 under it (``hmac_sha256``)."""
    body = plan.body()
    sealed: dict[str, JsonValue] = {**body, "sha256": seal(body)}
    key = _signing_key()
    if key is not None:
        sealed["hmac_sha256"] = _signature(key, body)
    write_durably(path, json.dumps(sealed, indent=1, ensure_ascii=False) + "\n")
    return str(sealed["sha256"])


def read_plan(path: Path) -> SavedPlan:
    """A plan file, refused (exit 3) if it was edited after it was written or its signature
    does not hold; every field checked, an :class:`InputError` naming the first wrong one."""
    hint = "write one with: remediate plan PLAYBOOK ... --out FILE"
    try:
        data = strictjson.loads(strictjson.decoded(path.read_bytes()))
    except OSError as error:
        raise InputError(
            f"cannot read the plan: {error.strerror}", target=str(path), hint=hint
        ) from None
    except strictjson.JsonProblem as problem:
        raise InputError(
            f"{problem.where}: {problem.message}", target=str(path), hint=hint
        ) from None
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        raise InputError(f"is not a {PLAN_FORMAT} plan file", target=str(path), hint=hint)
    claimed, signature = data.pop("sha256", None), data.pop("hmac_sha256", None)
    if claimed != seal(data):
        raise Refused(
            "the plan file was changed after it was written (its sha256 no longer matches)",
            target=str(path),
            hint="plan again and have the new plan approved",
        )
    _check_signature(data, signature, path)
    try:
        return _plan_of(data, str(claimed))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        message = f"missing: {error.args[0]}" if isinstance(error, KeyError) else str(error)
        raise InputError(
            message, target=str(path), hint="plan again; a plan is made by remediate plan --out"
        ) from None


def _check_signature(body: dict[str, JsonValue], signature: JsonValue, path: Path) -> None:
    key = _signing_key()
    if key is None and signature is None:
        return
    if key is None:
        raise Refused(
            "the plan is signed, but there is no key to check the signature with",
            target=str(path),
            hint=f"set {SIGNING_KEY_VARIABLE} to the key the plan was signed with",
        )
    if not isinstance(signature, str):
        raise Refused(
            f"the plan is not signed, and {SIGNING_KEY_VARIABLE} is set: only "
            "signed plans are applied",
            target=str(path),
            hint=f"plan again with {SIGNING_KEY_VARIABLE} set, and have it approved",
        )
    if not hmac.compare_digest(signature, _signature(key, body)):
        raise Refused(
            "the plan's signature does not hold: it was changed after it was "
            f"signed, or signed with another key than {SIGNING_KEY_VARIABLE}'s",
            target=str(path),
            hint="plan again and have the new plan approved",
        )


def _plan_of(data: dict[str, JsonValue], sha256: str) -> SavedPlan:
    Options.checked(data.get("options"))
    return SavedPlan(
        playbook=_text(data, "playbook"),
        parameters={
            key: _text(_object(data, "parameters"), key, "parameters.")
            for key in _object(data, "parameters")
        },
        options=data["options"],
        organisation=_text(data, "organisation"),
        source=_object(data, "source"),
        created=utc(_text(data, "created")),
        selection=data["selection"],
        fingerprints={
            key: _object(_object(data, "fingerprints"), key, "fingerprints.")
            for key in _object(data, "fingerprints")
        },
        changes=[
            _object({"change": change}, "change", "changes[].") for change in _list(data, "changes")
        ],
        # What the change ticket shows; optional (plans written before it lack them).
        findings=list(_optional_list(data, "findings")),
        manual_actions=[str(text) for text in _optional_list(data, "manual_actions")],
        rehearsed_s={
            key: float(_number(value, f"rehearsed_s.{key}"))
            for key, value in _optional_object(data, "rehearsed_s").items()
        },
        manual_steps=[str(step) for step in _optional_list(data, "manual_steps")],
        deletes=[int(_number(count, "deletes[]")) for count in _optional_list(data, "deletes")],
        sha256=sha256,
    )


def _number(value: JsonValue, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{where}: expected a number")
    return value


def _optional_list(data: dict[str, JsonValue], key: str) -> list[JsonValue]:
    return _list(data, key) if data.get(key) is not None else []


def _optional_object(data: dict[str, JsonValue], key: str) -> dict[str, JsonValue]:
    return _object(data, key) if data.get(key) is not None else {}


def _text(data: dict[str, JsonValue], key: str, prefix: str = "") -> str:
    value = data[key]
    if not isinstance(value, str):
        raise TypeError(f"{prefix}{key}: expected a string")
    return value


def _object(data: dict[str, JsonValue], key: str, prefix: str = "") -> dict[str, JsonValue]:
    value = data[key]
    if not isinstance(value, dict):
        raise TypeError(f"{prefix}{key}: expected an object")
    return value


def _list(data: dict[str, JsonValue], key: str) -> list[JsonValue]:
    value = data[key]
    if not isinstance(value, list):
        raise TypeError(f"{key}: expected an array")
    return value
