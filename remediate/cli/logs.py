"""structlog set-up for the command line: readable on a terminal, JSON lines otherwise; and,
for a run, every event also in the run directory (``RunLog``), whatever the console shows."""

from __future__ import annotations

import logging
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


def configure_logging(
    *, verbosity: int = 0, fmt: str | None = None, run_log: RunLog | None = None
) -> None:
    """verbosity 0: step-level events; 1+: every target; -1: warnings only. With ``run_log``
    every event (debug included) is also written to the run's ``log.jsonl``."""
    level = logging.INFO
    if verbosity > 0:
        level = logging.DEBUG
    elif verbosity < 0:
        level = logging.WARNING
    fmt = fmt or ("console" if sys.stderr.isatty() else "json")
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    processors: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if run_log is not None:
        processors += [run_log.processor, _at_least(level)]
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.DEBUG if run_log is not None else level),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
