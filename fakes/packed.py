"""Mail items packed for a world of millions of them: their ids and shared shapes.

A ``MailItem`` apiece costs 64 bytes plus its slot; at 100,000 users (about 2.8 million items)
that is close to 200 MB. Packed, an item costs a tuple slot: the shape (folder, subject, extra
fields) of an item without extra fields is shared by every item with the same folder and
subject, and ids numbered as a mailbox numbers them (``<prefix>001``, ``<prefix>002``, ...; the
scenarios' ``msg-<mailbox guid>-001``) are kept as their prefix and count, not as strings of
about 94 bytes each (another 260 MB at 100,000 users). ``MailItem``\\ s and the id strings are
made when asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from types import MappingProxyType
from typing import overload

from remediate.model import MailItem

Shape = tuple[str, str, Mapping[str, object]]  # (folder, subject, extra)
_NO_EXTRA: Mapping[str, object] = MappingProxyType({})


@lru_cache(maxsize=65_536)
def _plain_shape(folder: str, subject: str) -> Shape:
    return (folder, subject, _NO_EXTRA)


def _shape(item: MailItem) -> Shape:
    if item.extra:
        return (item.folder, item.subject, item.extra)
    return _plain_shape(item.folder, item.subject)


def _item(item_id: str, shape: Shape) -> MailItem:
    folder, subject, extra = shape
    if extra:
        return MailItem(item_id, folder, subject, extra)
    return MailItem(item_id, folder, subject)


_NUMBERS = tuple(f"{number:03d}" for number in range(1, 1000))


def _number(index: int) -> str:
    """How the ``index``-th id (from 0) of a numbered run ends: 001, 002, ..., 999, 1000."""
    return _NUMBERS[index] if index < len(_NUMBERS) else f"{index + 1:03d}"


Run = tuple[str, int]  # (prefix, count): prefix + 001, prefix + 002, ... up to count
PackedIds = tuple[Run | str, ...]  # numbered runs, and the ids that are not, in order


def pack_ids(ids: Sequence[str]) -> PackedIds:
    """``ids`` as numbered runs (each as long as it goes) and single ids: one form per
    sequence, so equal ids pack equal."""
    packed: list[Run | str] = []
    index = 0
    while index < len(ids):
        first = ids[index]
        if not first.endswith("001"):
            packed.append(first)
            index += 1
            continue
        prefix, count = first[:-3], 1
        width = len(prefix)
        while index + count < len(ids):
            following = ids[index + count]
            if following[width:] != _number(count) or following[:width] != prefix:
                break
            count += 1
        packed.append((prefix, count) if count > 1 else first)
        index += count
    return tuple(packed)


def unpack_ids(packed: PackedIds) -> tuple[str, ...]:
    ids: list[str] = []
    for part in packed:
        if isinstance(part, str):
            ids.append(part)
        else:
            prefix, count = part
            ids.extend([prefix + _number(index) for index in range(count)])
    return tuple(ids)


def _id_at(packed: PackedIds, index: int) -> str:
    """The ``index``-th id (from 0) of a packed sequence."""
    for part in packed:
        if isinstance(part, str):
            if index == 0:
                return part
            index -= 1
        elif index < part[1]:
            return part[0] + _number(index)
        else:
            index -= part[1]
    raise IndexError("item index out of range")


class ItemIds(Sequence[str]):
    """The ids of packed items: a read-only sequence (equal to the tuple of the same ids) whose
    strings are made when read, so an observation holding it costs nothing per item."""

    __slots__ = ("_count", "_packed")

    def __init__(self, packed: PackedIds, count: int) -> None:
        self._packed = packed
        self._count = count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return unpack_ids(self._packed)[index]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("item index out of range")
        return _id_at(self._packed, index)

    def __iter__(self) -> Iterator[str]:
        return iter(unpack_ids(self._packed))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ItemIds):
            return self._packed == other._packed
        if isinstance(other, tuple):
            return unpack_ids(self._packed) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(unpack_ids(self._packed))

    def __repr__(self) -> str:
        return repr(unpack_ids(self._packed))


class PackedItems(Sequence[MailItem]):
    """An immutable sequence of mail items, stored packed."""

    __slots__ = ("_ids", "_shapes")

    def __init__(self, items: Iterable[MailItem] = ()) -> None:
        listed = items if isinstance(items, Sequence) else tuple(items)
        self._ids = pack_ids([item.id for item in listed])
        self._shapes: tuple[Shape, ...] = tuple(_shape(item) for item in listed)

    @property
    def ids(self) -> ItemIds:
        """The items' ids, in order."""
        return ItemIds(self._ids, len(self._shapes))

    def __len__(self) -> int:
        return len(self._shapes)

    @overload
    def __getitem__(self, index: int) -> MailItem: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[MailItem]: ...

    def __getitem__(self, index: int | slice) -> MailItem | Sequence[MailItem]:
        if isinstance(index, slice):
            return tuple(self)[index]
        if index < 0:
            index += len(self._shapes)
        if not 0 <= index < len(self._shapes):
            raise IndexError("item index out of range")
        return _item(_id_at(self._ids, index), self._shapes[index])

    def __iter__(self) -> Iterator[MailItem]:
        return map(_item, unpack_ids(self._ids), self._shapes)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedItems):  # pack_ids makes one form of each id sequence
            return self._ids == other._ids and self._shapes == other._shapes
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._ids)

    def __repr__(self) -> str:
        return f"PackedItems({list(self)!r})"

    def __add__(self, more: Sequence[MailItem]) -> PackedItems:
        """These items, then ``more``."""
        joined = PackedItems()
        extra = PackedItems(more)
        joined._ids = pack_ids(unpack_ids(self._ids) + unpack_ids(extra._ids))
        joined._shapes = self._shapes + extra._shapes
        return joined


NO_ITEMS = PackedItems()
