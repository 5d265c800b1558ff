"""Typed access to the Faust tables: keys are UTF-8 strings, values domain types.

Every table holds raw bytes (Faust's raw codec) so that our Avro codec, not Faust's
serializers, decides the format; this wrapper is the one place that encodes and decodes them
(``streams.tables``: Avro, or the JSON of older values).

``active`` filters a table's local store down to the partitions this worker owns as an
active: with standby replicas the local store also holds other workers' partitions, and a
scan (an expiry sweep, a local trending answer) must never act on those.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import faust
from faust.streams import _current_event
from faust.types import EventT, TableT

from tritontube.streams.partitioning import partition_of
from tritontube.streams.records import EventCodec
from tritontube.streams.tables import decode_value

T = TypeVar("T")


class TypedTable(Generic[T]):
    def __init__(self, table: TableT[Any, Any], codec: EventCodec, cls: type[T]) -> None:
        self.table = table
        self.codec = codec
        self.cls = cls

    @property
    def name(self) -> str:
        return str(self.table.name)

    @property
    def changelog_topic(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    def get(self, key: str) -> T | None:
        raw = self.table.get(key.encode())
        return None if raw is None else decode_value(self.codec, raw, self.cls)

    def put(self, key: str, value: T) -> None:
        self.table[key.encode()] = self.codec.encode(value)

    def delete(self, key: str) -> None:
        """Remove ``key`` (a tombstone in the changelog); a missing key is not an error."""
        raw = key.encode()
        if raw in self.table:
            del self.table[raw]

    def active_partitions(self, app: faust.App) -> set[int]:
        """The partitions of this table's changelog this worker owns as an active."""
        topic = self.changelog_topic
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}

    def active_items(self, app: faust.App, partitions: int) -> Iterator[tuple[str, T]]:
        """Keys and values of the partitions this worker owns (keys placed by the default
        partitioner, as every table written from a topic keyed like the table is)."""
        mine = self.active_partitions(app)
        for key, raw in list(self.table.items()):
            if partition_of(key, partitions) in mine:
                yield key.decode(), decode_value(self.codec, raw, self.cls)


@contextmanager
def attributed_to(event: EventT) -> Iterator[None]:
    """Table writes made inside are attributed to ``event``.

    Faust takes a table write's changelog partition (and a RocksDB store its partition
    database) from the stream's current event, which a ``take_events`` batch does not set
    in the agent's task; a write made on behalf of a batched event sets it explicitly.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
