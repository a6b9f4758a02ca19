"""structlog set-up for the command line. JSON lines for machines (``--log-format json``, the
default when stderr is no terminal); for people (``console``) the events themselves only with
``-v`` (the human view, ``StepLines``, says what they need without them); and, for a run, every
event also in the run directory (``RunLog``), whatever the console shows."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog

from remediate.cli.console import RunLog


class _Stderr:
    """``sys.stderr`` as it is at each write, not when logging was configured: progress bars
    (rich) put a proxy there while they run, which prints log lines above the bars."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _at_least(level: int) -> structlog.typing.Processor:
    """Drop, for the console only, what the run's log keeps and -q/-v do not show."""
    levels = {**logging.getLevelNamesMapping(), "EXCEPTION": logging.ERROR}

    def drop_below(logger: Any, method_name: str, event_dict: Any) -> Any:
        if levels.get(method_name.upper(), logging.INFO) < level:
            raise structlog.DropEvent
        return event_dict

    return drop_below


def colours_wanted() -> bool:
    """Colour only at a terminal, and never when NO_COLOR is set to anything (no-color.org)."""
    return sys.stderr.isatty() and not os.environ.get("NO_COLOR")


def console_format(fmt: str | None) -> str:
    return fmt or ("console" if sys.stderr.isatty() else "json")


_LONG_LIST = 5


def _readable(logger: Any, method_name: str, event_dict: Any) -> Any:
    """For people: no ``run_id=None``, and a list of 2,000 targets as its count (the JSON lines
    and the run's log keep every value)."""
    return {
        key: f"{len(value):,} {key}"
        if isinstance(value, list) and len(value) > _LONG_LIST
        else value
        for key, value in event_dict.items()
        if value is not None
    }


def _not_the_engines(logger: Any, method_name: str, event_dict: Any) -> Any:
    """For a console without -v: the engine's run and step events are the human view's
    (``StepLines``); any other warning (a snapshot's retry) is still shown."""
    if str(event_dict.get("event", "")).startswith(("run.", "step.")):
        raise structlog.DropEvent
    return event_dict


def configure_logging(
    *, verbosity: int = 0, fmt: str | None = None, run_log: RunLog | None = None
) -> None:
    """JSON: verbosity 0 step-level events; 1+ every target; -1 warnings only. Console: at
    verbosity 0 or less only warnings that are not the engine's (the human view shows those),
    every event at 1+. With ``run_log`` every event (debug included) is also written to the run's
    ``log.jsonl``."""
    level = logging.INFO
    if verbosity > 0:
        level = logging.DEBUG
    elif verbosity < 0:
        level = logging.WARNING
    fmt = console_format(fmt)
    quiet_console = fmt == "console" and verbosity <= 0
    if quiet_console:  # the human view says what the engine's events would
        level = logging.WARNING
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=colours_wanted())
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    processors: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if run_log is not None:
        processors += [run_log.processor, _at_least(level)]
    if quiet_console:
        processors.append(_not_the_engines)
    if fmt == "console":
        processors.append(_readable)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.DEBUG if run_log is not None else min(level, logging.CRITICAL)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
