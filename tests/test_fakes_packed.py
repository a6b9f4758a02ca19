"""Mail items packed per mailbox: numbered ids kept as runs give back exactly the ids they hold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remediate.fakes.packed import PackedItems, pack_ids, unpack_ids
from remediate.model import MailItem

# Ids as mailboxes number them (runs of prefix + 001, 002, ...), broken runs, and others.
_PREFIXES = st.sampled_from(["msg-a-", "msg-b-", "", "x0", "m-0"])
_RUNS = st.lists(st.tuples(_PREFIXES, st.integers(1, 12), st.integers(1, 12)), max_size=4)
_OTHERS = st.lists(
    st.sampled_from(["001", "x", "msg-a-002", "msg-a-001", "a1000", "0010"]), max_size=3
)


@st.composite
def id_sequences(draw: st.DrawFn) -> list[str]:
    ids: list[str] = []
    for prefix, start, count in draw(_RUNS):
        ids += [f"{prefix}{number:03d}" for number in range(start, start + count)]
        ids += draw(_OTHERS)
    return ids


def items(ids: list[str]) -> list[MailItem]:
    return [MailItem(item_id, "Inbox", f"subject {index % 3}") for index, item_id in enumerate(ids)]


@given(id_sequences())
def test_packed_ids_unpack_to_the_same_ids(ids: list[str]) -> None:
    assert unpack_ids(pack_ids(ids)) == tuple(ids)


@given(id_sequences())
def test_packed_items_give_back_every_item_in_order_and_by_index(ids: list[str]) -> None:
    listed = items(ids)
    packed = PackedItems(listed)
    assert list(packed) == listed
    assert [packed[index] for index in range(-len(ids), len(ids))] == listed + listed
    with pytest.raises(IndexError):
        packed[len(ids)]


@given(id_sequences())
def test_item_ids_are_a_sequence_equal_to_the_tuple_of_the_same_ids(ids: list[str]) -> None:
    packed = PackedItems(items(ids)).ids
    assert packed == tuple(ids) and tuple(ids) == packed
    assert hash(packed) == hash(tuple(ids))
    assert list(packed) == ids and len(packed) == len(ids)
    assert [packed[index] for index in range(-len(ids), len(ids))] == ids + ids
    assert packed[1:] == tuple(ids[1:])
    assert packed != (*ids, "another")
    with pytest.raises(IndexError):
        packed[len(ids)]


@given(id_sequences(), id_sequences())
def test_joined_items_equal_the_items_packed_at_once(first: list[str], more: list[str]) -> None:
    joined = PackedItems(items(first)) + items(more)
    at_once = PackedItems(items(first) + items(more))
    assert joined == at_once
    assert hash(joined) == hash(at_once)
    assert joined.ids == tuple(first + more)


def test_a_numbered_mailbox_keeps_one_run_not_its_id_strings() -> None:
    ids = [f"msg-0f4b2c1e-{number:03d}" for number in range(1, 29)]
    assert pack_ids(ids) == (("msg-0f4b2c1e-", 28),)
    assert pack_ids(["msg-001", "msg-003"]) == ("msg-001", "msg-003")
