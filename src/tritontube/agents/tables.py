"""Typed access to the Faust tables: keys are UTF-8 strings, values domain types.

Every table holds raw bytes (Faust's raw codec) so that our Avro codec, not Faust's
serializers, decides the format; this wrapper is the one place that encodes and decodes them
(``streams.tables``: Avro, or the JSON of older values).

``active`` filters a table's local store down to the partitions this worker owns as an
active: with standby replicas the local store also holds other workers' partitions, and a
scan (an expiry sweep, a local trending answer) must never act on those.

Decoding a value costs 5-20 µs (a watch session holds its recent event ids); the batched
agents read the same keys batch after batch. Each table therefore remembers the decoded
value of the bytes it last wrote or read per key (bounded): a read whose stored bytes are
equal to the remembered ones returns the remembered value, and any other bytes (a changelog
recovery, another writer) are decoded. Values are immutable domain types, so sharing them
is safe.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar, cast

import faust
from faust.stores.memory import Store as MemoryStore
from faust.streams import _current_event
from faust.types import EventT, TableT

from tritontube.agents.topology import Topology
from tritontube.streams.partitioning import partition_of
from tritontube.streams.records import EventCodec
from tritontube.streams.tables import decode_value

T = TypeVar("T")
REMEMBERED = 50_000  # decoded values kept per table


class TypedTable(Generic[T]):
    def __init__(
        self,
        table: TableT[Any, Any],
        codec: EventCodec,
        cls: type[T],
        *,
        remembered: int = REMEMBERED,
    ) -> None:
        self.table = table
        self.codec = codec
        self.cls = cls
        self._limit = remembered
        self._decoded: dict[bytes, tuple[bytes, T]] = {}
        self._reader: Callable[[bytes], bytes | None] | None = None

    @property
    def name(self) -> str:
        return str(self.table.name)

    @property
    def changelog_topic(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    def get(self, key: str) -> T | None:
        raw_key = key.encode()
        raw = self._read(raw_key)
        if raw is None:
            return None
        seen = self._decoded.get(raw_key)
        if seen is not None and seen[0] == raw:
            return seen[1]
        value = decode_value(self.codec, raw, self.cls)
        self._keep(raw_key, raw, value)
        return value

    def _read(self, raw_key: bytes) -> bytes | None:
        """The stored bytes, from the store itself (no per-read sensor call). A memory
        store's dict answers a missing key without raising (``Mapping.get``'s KeyError costs
        more than the lookup); any other store through its mapping API."""
        if self._reader is None:
            store = self.table.data
            self._reader = store.data.get if isinstance(store, MemoryStore) else store.get
        return self._reader(raw_key)

    def put(self, key: str, value: T) -> None:
        raw_key = key.encode()
        self.table[raw_key] = self.remember(raw_key, value)

    def remember(self, raw_key: bytes, value: T) -> bytes:
        """``value`` encoded, remembered as the decoded form of those bytes (the caller
        stores exactly the returned object)."""
        raw = self.codec.encode(value)
        self._keep(raw_key, raw, value)
        return raw

    def forget(self, raw_key: bytes) -> None:
        self._decoded.pop(raw_key, None)

    def _keep(self, raw_key: bytes, raw: bytes, value: T) -> None:
        decoded = self._decoded
        if raw_key not in decoded and len(decoded) >= self._limit:
            del decoded[next(iter(decoded))]  # the oldest remembered key
        decoded[raw_key] = (raw, value)

    def partition_for(self, raw_key: bytes, source_partition: int) -> int:
        """The changelog partition of a write: the key's when the table uses the
        partitioner, else the source partition (as Faust's own writes choose)."""
        if self.table.use_partitioner:
            return partition_of(raw_key, self.table.partitions or 1)
        return source_partition

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


def shared(topology: Topology, name: str, codec: EventCodec, cls: type[T]) -> TypedTable[T]:
    """The one typed view of table ``name`` in this app (made on first use): a value one
    agent writes is then read back by another without decoding it again."""
    found = topology.typed.get(name)
    if found is None:
        found = topology.typed[name] = TypedTable(topology.tables[name], codec, cls)
    if found.cls is not cls:
        raise TypeError(f"table {name} holds {found.cls.__name__}, not {cls.__name__}")
    return cast(TypedTable[T], found)


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
