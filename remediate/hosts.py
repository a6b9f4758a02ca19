"""Directory servers named two ways: discovery reads a DC's dNSHostName (``dc1.corp.example``),
while Exchange may report the same DC by its computer name (Exchange_DSAccessDC's Name is "the
computer name of the domain controller", Exchange 2003 SDK, aa143708)."""

from __future__ import annotations

from collections.abc import Iterable


def _first_label(name: str) -> str:
    return name.split(".", 1)[0].casefold()


def same_host(reported: str, hosts: Iterable[str]) -> str | None:
    """The one of ``hosts`` that ``reported`` names: the same full name (any case), or the same
    first label where either is a short name (two full names that differ are two hosts)."""
    candidates = list(hosts)
    for host in candidates:
        if host.casefold() == reported.casefold():
            return host
    for host in candidates:
        if _first_label(host) == _first_label(reported) and (
            "." not in host or "." not in reported
        ):
            return host
    return None
