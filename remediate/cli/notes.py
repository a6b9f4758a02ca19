"""What reports say about a plan's steps, asked of the steps themselves: each step id is looked
up in its playbook's outline (a plugin's steps speak for themselves the same way), and a step
the playbook does not list (a playbook not installed here) gets the defaults of ``Step``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from remediate.engine.changes import ChangeRecord
from remediate.engine.playbook import Playbook
from remediate.engine.step import Step
from remediate.engine.wording import Duration
from remediate.playbooks import find_playbook


def step_kind(playbook: str, step_id: str) -> type[Step[Any, Any]]:
    found: Playbook[Any, Any] | None = find_playbook(playbook)
    kind = found.step_kind(step_id) if found is not None else None
    return kind if kind is not None else Step


def in_words(playbook: str, step_id: str, records: Sequence[ChangeRecord]) -> list[str]:
    return step_kind(playbook, step_id).in_words(step_id, records)


def risk(playbook: str, step_id: str, records: Sequence[ChangeRecord]) -> str | None:
    return step_kind(playbook, step_id).risk(records)


def rollback(playbook: str, step_id: str, records: Sequence[ChangeRecord]) -> tuple[str, ...]:
    return step_kind(playbook, step_id).rollback(records)


def expected_duration(
    playbook: str,
    step_id: str,
    records: Sequence[ChangeRecord],
    rehearsed_s: float,
    *,
    manual: bool,
) -> Duration:
    kind = step_kind(playbook, step_id)
    return kind.expected_duration(records, rehearsed_s, manual=manual)
