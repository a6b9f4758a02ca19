"""The inventory file read as TOML, the same way by each part that reads it (the directory's
and the Exchange servers' settings, and the inventory as a whole): every failure is an
``InputError`` naming the file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from remediate.errors import InputError


def read_inventory(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read the inventory: {error}", target=str(path)) from None
    except tomllib.TOMLDecodeError as error:
        raise InputError(
            f"not valid TOML: {error}", target=str(path), hint="fix the syntax at that line"
        ) from None
    except ValueError as error:  # int(): a number of more than 4,300 digits
        raise InputError(
            f"a number too large to read ({str(error).split(':')[0]})",
            target=str(path),
            hint="no setting of an inventory is that large",
        ) from None
