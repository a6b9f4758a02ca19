"""Stop requests (Ctrl-C, ``timeout``'s SIGTERM, a closed terminal's SIGHUP): a run stops after
the operation in flight, never in the middle of one.

A change sent to a server cannot be taken back half-way: stopping inside it would leave the
engine not knowing whether it took effect. So while a change is in flight (:func:`operation`)
a stop request is only noted, and raised as :class:`Interrupted` as soon as the change has
returned. Outside a change (a read, a wait between polls, which may last minutes on real
servers) it is raised at once. A second request while a change is in flight is raised at once
too: the operator insists (a server that never answers)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop (``signal_name``: SIGINT, SIGTERM or SIGHUP)."""

    def __init__(self, signal_name: str) -> None:
        self.signal_name = signal_name
        super().__init__(signal_name)

    @property
    def how(self) -> str:
        return "Ctrl-C" if self.signal_name == "SIGINT" else self.signal_name


class _State:
    in_flight = 0
    requested: str | None = None


def request(signal_name: str) -> None:
    """Ask the run to stop: at once, or after the change in flight."""
    if _State.in_flight and _State.requested is None:
        _State.requested = signal_name
        return
    _State.requested = None
    raise Interrupted(signal_name)


@contextmanager
def operation() -> Iterator[None]:
    """A change in flight: a stop request waits until it has returned (or failed)."""
    _State.in_flight += 1
    try:
        yield
    finally:
        _State.in_flight -= 1
    if _State.requested is not None and not _State.in_flight:
        name, _State.requested = _State.requested, None
        raise Interrupted(name)


def _handler(signum: int, frame: FrameType | None) -> None:
    request(signal.Signals(signum).name)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP request a stop while this lasts (main thread only: Python
    delivers signals there; elsewhere the defaults stay), unless they are ignored (nohup)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # A signal ignored by whoever started us stays ignored: `nohup remediate apply ...` must
    # survive the terminal closing.
    previous = {
        signum: signal.signal(signum, _handler)
        for signum in SIGNALS
        if signal.getsignal(signum) is not signal.SIG_IGN
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _State.requested = None
