"""LDIF (RFC 2849) backups of AD objects before they are deleted or stripped, and their reader.

Two kinds of record, both for ``ldifde -i`` (or ``ldbadd``/``ldbmodify``) to re-import:

- a deleted object: a content record (an add) with every attribute the object held; objects
  below it come after it, so a tree is re-created parents first;
- a stripped user: a change record (``changetype: modify``) that puts back, with ``replace``,
  every attribute the strip clears, with the values it held.

Binary values (SIDs, security descriptors, photos; any value that is not a SAFE-STRING) are
base64 (``attr:: value``), GUID attributes as their 16 bytes. What AD owns and no import may
write (objectGUID, objectSid, whenCreated, uSNChanged, ...) is kept in comment lines
(``# objectGUID:: ...``): an import skips them, :func:`read_entries` reads them back.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from uuid import UUID

from remediate.dn import split_rdns
from remediate.model import (
    BINARY_ATTRIBUTES,
    GUID_ATTRIBUTES,
    NO_BINARY,
    AttrValue,
    DirectoryEntry,
)

_SAFE_INIT = set(range(0x01, 0x80)) - {0x0A, 0x0D, 0x20, 0x3A, 0x3C}
_SAFE = set(range(0x01, 0x80)) - {0x0A, 0x0D}
# Attributes AD maintains itself: an add or modify that names them is refused, so the backup
# keeps them as comments (lower-case).
SYSTEM_OWNED = frozenset(
    {
        "objectguid",
        "objectsid",
        "whencreated",
        "whenchanged",
        "usncreated",
        "usnchanged",
        "distinguishedname",
        "name",
        "instancetype",
        "samaccounttype",
        "dscorepropagationdata",
        "memberof",
        "lastlogon",
        "lastlogoff",
        "lastlogontimestamp",
        "logoncount",
        "badpwdcount",
        "badpasswordtime",
        "pwdlastset",
        "iscriticalsystemobject",
        "objectcategory",
        "replpropertymetadata",
        "msds-revealeddsas",
        # settable only after the add (an add takes the default, Domain Users)
        "primarygroupid",
    }
)


class LdifError(ValueError):
    """A backup that cannot be read back."""


def _is_safe(value: bytes) -> bool:
    if not value:
        return True
    return value[0] in _SAFE_INIT and value[-1] != 0x20 and all(b in _SAFE for b in value)


def _line(name: str, value: str | bytes, *, comment: bool = False) -> str:
    raw = value if isinstance(value, bytes) else value.encode("utf-8")
    prefix = "# " if comment else ""
    if isinstance(value, str) and _is_safe(raw):
        return f"{prefix}{name}: {value}"
    return f"{prefix}{name}:: {base64.b64encode(raw).decode('ascii')}"


def _generalized_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%d%H%M%S.0Z")


def _values(entry: DirectoryEntry, name: str) -> list[str | bytes]:
    """An attribute's values as AD holds them: GUID attributes as their 16 bytes."""
    binary = entry.get_binary(name)
    if binary:
        return list(binary)
    value = next((v for k, v in entry.attributes.items() if k.lower() == name.lower()), None)
    texts = [] if value is None else [value] if isinstance(value, str) else list(value)
    if name.lower() in GUID_ATTRIBUTES:
        return [UUID(text).bytes_le for text in texts]
    return list(texts)


def _identity(entry: DirectoryEntry) -> list[str]:
    return [
        _line("objectGUID", entry.guid.bytes_le, comment=True),
        _line("whenCreated", _generalized_time(entry.when_created), comment=True),
        _line("whenChanged", _generalized_time(entry.when_changed), comment=True),
        _line("uSNChanged", str(entry.usn_changed), comment=True),
    ]


def _names(entry: DirectoryEntry) -> list[str]:
    return sorted({*entry.attributes, *entry.binary}, key=str.lower)


def entry_to_ldif(entry: DirectoryEntry) -> str:
    """One object as a content record: everything it holds (what AD owns as comments)."""
    lines = [_line("dn", entry.dn), *_identity(entry), _line("objectClass", entry.object_class)]
    for name in _names(entry):
        owned = name.lower() in SYSTEM_OWNED
        lines += [_line(name, value, comment=owned) for value in _values(entry, name)]
    return "\n".join(lines) + "\n"


def entry_to_modify(entry: DirectoryEntry, names: Sequence[str]) -> str:
    """A change record that puts back these attributes (those the entry holds) as they are."""
    lines = [_line("dn", entry.dn), *_identity(entry), "changetype: modify"]
    for name in names:
        # A replace without values removes the attribute where it is set and is no error where
        # it is not (RFC 4511 4.6): so an attribute the object did not hold is recorded too.
        lines += [f"replace: {name}", *(_line(name, v) for v in _values(entry, name)), "-"]
    return "\n".join(lines) + "\n"


def _depth(entry: DirectoryEntry) -> int:
    try:
        return len(split_rdns(entry.dn))
    except ValueError:
        return entry.dn.count(",")


def parents_first(entries: Iterable[DirectoryEntry]) -> list[DirectoryEntry]:
    """The entries with every container before what lies in it (an add needs the parent)."""
    return sorted(entries, key=_depth)


def ldif_pieces(entries: Iterable[DirectoryEntry]) -> Iterator[str]:
    """The content records of ``entries`` (parents first) a piece at a time, so a backup of a
    batch of 100,000 users is never one string (nor a list of them) in memory."""
    return _pieces(entry_to_ldif(entry) for entry in parents_first(entries))


def modify_pieces(entries: Iterable[DirectoryEntry], names: Sequence[str]) -> Iterator[str]:
    """The change records that put ``names`` back on each of ``entries``."""
    return _pieces(entry_to_modify(entry, names) for entry in entries)


def _pieces(records: Iterable[str]) -> Iterator[str]:
    yield "version: 1\n\n"
    for index, record in enumerate(records):
        yield "\n" + record if index else record


# -- reading a backup back ----------------------------------------------------------------------


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    for line in text.split("\n"):
        if line.startswith(" ") and lines and lines[-1]:
            lines[-1] += line[1:]
        else:
            lines.append(line.rstrip("\r"))
    return lines


def _parse_line(line: str) -> tuple[str, bytes, bool]:
    name, sep, rest = line.partition(":")
    if not sep or not name:
        raise LdifError(f"not an LDIF line: {line[:80]!r}")
    if rest.startswith(":"):
        try:
            return name, base64.b64decode(rest[1:].strip(), validate=True), True
        except ValueError:
            raise LdifError(f"{name}: not base64") from None
    if rest.startswith("<"):
        raise LdifError(f"{name}: URL values are not read")
    return name, rest.lstrip(" ").encode("utf-8"), False


class _Record:
    def __init__(self, dn: str) -> None:
        self.dn = dn
        self.identity: dict[str, bytes] = {}
        self.values: dict[str, list[tuple[bytes, bool]]] = {}
        self.object_class = ""

    def add(self, name: str, raw: bytes, encoded: bool) -> None:
        if name.lower() == "objectclass":
            self.object_class = raw.decode("utf-8")
        else:
            self.values.setdefault(name, []).append((raw, encoded))

    def entry(self) -> DirectoryEntry:
        guid = self.identity.get("objectguid")
        if guid is None or len(guid) != 16:
            raise LdifError(f"{self.dn}: no objectGUID comment in the record")
        attributes: dict[str, AttrValue] = {}
        binary: dict[str, tuple[bytes, ...]] = {}
        for name, values in self.values.items():
            texts = _texts(name, [raw for raw, _ in values])
            if not values:
                attributes[name] = []  # recorded as not held
            elif texts is None:
                binary[name] = tuple(raw for raw, _ in values)
            else:
                attributes[name] = texts[0] if len(texts) == 1 else texts
        return DirectoryEntry(
            guid=UUID(bytes_le=guid),
            dn=self.dn,
            object_class=self.object_class,
            when_created=_time(self.identity.get("whencreated")),
            when_changed=_time(self.identity.get("whenchanged")),
            usn_changed=int(self.identity.get("usnchanged") or b"0"),
            attributes=attributes,
            binary=binary or NO_BINARY,
        )


def _texts(name: str, values: list[bytes]) -> list[str] | None:
    """Values as the port shows them (GUID attributes dashed); None: binary."""
    if name.lower() in BINARY_ATTRIBUTES:
        return None
    try:
        if name.lower() in GUID_ATTRIBUTES:
            return [str(UUID(bytes_le=value)) for value in values]
        return [value.decode("utf-8") for value in values]
    except (UnicodeDecodeError, ValueError):
        return None


def _time(raw: bytes | None) -> datetime:
    if not raw:
        return datetime.min.replace(tzinfo=UTC)
    return datetime.strptime(raw.decode("ascii")[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def read_entries(text: str) -> list[DirectoryEntry]:
    """The objects of a backup as they were written: content records with every attribute,
    change records with the attributes they put back. Raises :class:`LdifError`."""
    records: list[_Record] = []
    current: _Record | None = None
    for line in [*_logical_lines(text), ""]:
        if not line:
            current = None
            continue
        if current is None:
            if line.startswith(("#", "version:")):
                continue
            name, raw, _ = _parse_line(line)
            if name.lower() != "dn":
                raise LdifError(f"a record starts with {name!r}, not dn")
            current = _Record(raw.decode("utf-8"))
            records.append(current)
        elif line.startswith("# "):
            name, raw, encoded = _parse_line(line[2:])
            if name.lower() in ("objectguid", "whencreated", "whenchanged", "usnchanged"):
                current.identity[name.lower()] = raw
            else:
                current.add(name, raw, encoded)
        elif line.startswith("replace:"):
            current.values.setdefault(line.partition(":")[2].strip(), [])
        elif line.startswith("#") or line == "-" or line.startswith("changetype:"):
            continue
        else:
            current.add(*_parse_line(line))
    return [record.entry() for record in records]
