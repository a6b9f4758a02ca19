"""Mail items packed for a world of millions of them: their ids and shared shapes as two tuples.

A ``MailItem`` apiece costs 64 bytes plus its slot; at 100,000 users (about 2.8 million items)
that is close to 200 MB. Packed, an item costs its id and two tuple slots: the shape (folder,
subject, extra fields) of an item without extra fields is shared by every item with the same
folder and subject. ``MailItem``\\ s are made when asked for.
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


class PackedItems(Sequence[MailItem]):
    """An immutable sequence of mail items, stored packed."""

    __slots__ = ("_shapes", "ids")

    def __init__(self, items: Iterable[MailItem] = ()) -> None:
        listed = items if isinstance(items, Sequence) else tuple(items)
        self.ids: tuple[str, ...] = tuple(item.id for item in listed)
        self._shapes: tuple[Shape, ...] = tuple(_shape(item) for item in listed)

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> MailItem: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[MailItem]: ...

    def __getitem__(self, index: int | slice) -> MailItem | Sequence[MailItem]:
        if isinstance(index, slice):
            return tuple(self)[index]
        return _item(self.ids[index], self._shapes[index])

    def __iter__(self) -> Iterator[MailItem]:
        return map(_item, self.ids, self._shapes)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedItems):
            return self.ids == other.ids and self._shapes == other._shapes
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.ids)

    def __repr__(self) -> str:
        return f"PackedItems({list(self)!r})"

    def __add__(self, more: Sequence[MailItem]) -> PackedItems:
        """These items, then ``more``."""
        joined = PackedItems()
        extra = PackedItems(more)
        joined.ids = self.ids + extra.ids
        joined._shapes = self._shapes + extra._shapes
        return joined


NO_ITEMS = PackedItems()
