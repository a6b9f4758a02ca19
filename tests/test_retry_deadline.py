"""``--retry-deadline SECONDS`` (plan, apply, resume): how long a transient error (a server that
does not answer, a busy one) is retried before the run gives up. Without it: 6 attempts, about
30 s; with it: as many attempts as fit in the deadline, short or long."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from remediate.cli.main import _engine, _retry_policy, build_parser
from remediate.cli.options import CommandOptions
from remediate.clock import VirtualClock
from remediate.engine.retry import RetryPolicy
from remediate.errors import TransientError

START = datetime(2026, 11, 1, tzinfo=UTC)


def parsed(argv: list[str]) -> CommandOptions:
    return CommandOptions.from_args(build_parser().parse_args(argv))


def attempts_until_given_up(policy: RetryPolicy) -> tuple[int, timedelta]:
    """Attempts made at a server that never answers, and the (virtual) time they took."""
    clock, calls = VirtualClock(START), []

    def unreachable() -> None:
        calls.append(clock.now())
        raise TransientError("cannot connect", endpoint="EXCH01", operation="describe")

    with pytest.raises(TransientError):
        policy.retrying(clock)(unreachable)
    return len(calls), clock.now() - START


def test_by_default_six_attempts_in_about_thirty_seconds() -> None:
    attempts, took = attempts_until_given_up(RetryPolicy())
    assert attempts == 6 and timedelta(seconds=15) < took < timedelta(seconds=62)


@pytest.mark.parametrize(("deadline_s", "attempts_at_least"), [(1.0, 1), (600.0, 20)])
def test_a_deadline_bounds_the_retries_however_many_attempts_fit(
    deadline_s: float, attempts_at_least: int
) -> None:
    attempts, took = attempts_until_given_up(RetryPolicy.within(deadline_s))
    assert attempts >= attempts_at_least
    assert timedelta(seconds=deadline_s) <= took <= timedelta(seconds=deadline_s + 30)


@pytest.mark.parametrize(
    "command",
    [
        ["plan", "kb842101", "--world", "w.json"],
        ["apply", "kb842101", "--world", "w.json"],
        ["resume", "20261101T000000Z-abc"],
    ],
)
def test_plan_apply_and_resume_take_a_retry_deadline(command: list[str]) -> None:
    assert _engine(parsed(command)).retry == RetryPolicy()
    engine = _engine(parsed([*command, "--retry-deadline", "2.5"]))
    assert engine.retry == RetryPolicy.within(2.5)


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_retry_deadline_is_a_positive_number_of_seconds(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["plan", "kb842101", "--retry-deadline", value])
    assert exited.value.code == 1 and "--retry-deadline" in capsys.readouterr().err


def test_snapshot_takes_a_retry_deadline_for_its_reads() -> None:
    command = ["snapshot", "--world", "w.json", "--out", "snap.json"]
    assert _retry_policy(parsed(command)) == RetryPolicy()
    assert _retry_policy(parsed([*command, "--retry-deadline", "7"])) == (RetryPolicy.within(7.0))
