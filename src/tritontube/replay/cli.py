"""``tritontube replay`` and ``tritontube archive``: argument parsing and the progress bar.

Every mode is a dry run unless ``--execute``: it reads and counts what it selects, and says
what it would write, but creates no topic, commits no offset and writes no index.

tritontube replay --topic watch-events --from-offset 100 --to-topic watch-events.copy
tritontube replay --source archive --since 2025-01-01T00:00Z --topic uploads --to-topic x
tritontube replay --topic watch-events --since 2025-01-01T00:00Z --to-group my-analytics
tritontube replay --rebuild --source archive --index-path /tmp/idx --snapshot /tmp/s.json
tritontube archive list
tritontube archive restore
(add --execute to any of them to write)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from aiokafka.errors import KafkaError
from tqdm import tqdm

from tritontube.replay import engine, rebuild, restore
from tritontube.replay.sources import ArchiveSource, Selection, Source, TopicSource
from tritontube.settings import Settings
from tritontube.storage.port import ObjectStoreError
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams import archive
from tritontube.streams.codec import AvroCodec, SchemaRegistry
from tritontube.streams.records import EventCodec

#: The broker or the object store is down or refused, or an archive file is unreadable: the
#: command says so in one line and exits 1 (no traceback).
FAILURES = (KafkaError, ObjectStoreError, archive.ArchiveFormatError)


def _moment(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def add_replay_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("replay", help="replay topics or the archive into a topic, group or rebuild")
    p.add_argument("--source", choices=("topics", "archive"), default="topics")
    p.add_argument("--topic", action="append", default=[], help="topic to read (repeatable)")
    p.add_argument("--from-offset", type=int, default=None, help="first offset per partition")
    p.add_argument("--to-offset", type=int, default=None, help="last offset per partition")
    p.add_argument("--since", type=_moment, default=None, help="record timestamp >= (ISO-8601)")
    p.add_argument("--until", type=_moment, default=None, help="record timestamp < (ISO-8601)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-topic", help="produce copies of the records into this new topic")
    target.add_argument("--to-group", help="position this consumer group at the selection")
    target.add_argument("--rebuild", action="store_true", help="rebuild state and search index")
    p.add_argument(
        "--execute",
        action="store_true",
        help="really write: produce the copy, commit the offsets, write the index "
        "(default: a dry run that only reports)",
    )
    p.add_argument("--index-path", type=Path, default=None, help="fresh tantivy index dir")
    p.add_argument(
        "--snapshot", type=Path, default=None, help="write rebuilt states as JSON (dry run too)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def add_archive_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("archive", help="the event archive in the object store")
    archive_sub = p.add_subparsers(dest="archive_command", required=True)
    archive_sub.add_parser("list", help="archived files per topic-partition")
    r = archive_sub.add_parser("restore", help="produce the archive into empty broker topics")
    r.add_argument("--execute", action="store_true", help="really produce (default: dry run)")
    return p


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    try:
        summary = asyncio.run(_replay(settings, args))
    except (engine.ReplayRefused, LookupError, ValueError) as exc:
        print(f"replay refused: {exc}", file=sys.stderr)
        return 2
    except FAILURES as exc:
        print(f"replay failed: {exc}", file=sys.stderr)
        return 1
    print("\n".join(summary.lines()))
    return 0


def cmd_archive(settings: Settings, args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_archive(settings, args))
    except FAILURES as exc:
        print(f"archive {args.archive_command} failed: {exc}", file=sys.stderr)
        return 1


async def _replay(settings: Settings, args: argparse.Namespace) -> engine.Summary:
    topics = tuple(args.topic) or (rebuild.input_topics() if args.rebuild else ())
    if not topics:
        raise ValueError("name at least one --topic")
    selection = Selection(
        topics=topics,
        from_offset=args.from_offset,
        to_offset=args.to_offset,
        since=args.since,
        until=args.until,
    )
    store = S3ObjectStore.from_settings(settings.s3)
    try:
        source: Source = (
            ArchiveSource(store, settings.archive.prefix, selection)
            if args.source == "archive"
            else TopicSource(settings.kafka, selection)
        )
        target, name = _target(settings, args)
        summary = engine.Summary(source=f"{args.source} {', '.join(topics)}", target=name)
        bar = tqdm(unit="rec", file=sys.stderr, disable=args.no_progress, mininterval=0.2)
        try:

            def progress(scanned: int, total: int) -> None:
                bar.total = total
                bar.update(scanned - bar.n)

            return await engine.run_replay(source, target, summary, progress)
        finally:
            bar.close()
    finally:
        store.close()


def _target(settings: Settings, args: argparse.Namespace) -> tuple[engine.Target, str]:
    mode = "" if args.execute else " (dry run)"
    if args.to_topic:
        topic = engine.TopicTarget(settings.kafka, args.to_topic, execute=args.execute)
        return topic, f"topic {args.to_topic}{mode}"
    if args.to_group:
        group = engine.GroupTarget(settings.kafka, args.to_group, execute=args.execute)
        return group, f"group {args.to_group}{mode}"
    from tritontube.indexer.factory import build_search_index

    codec = EventCodec(AvroCodec(SchemaRegistry()))
    index_path = args.index_path or settings.data_dir / "rebuild" / _stamp() / "search"
    index_settings = settings.model_copy(
        update={
            "search": settings.search.model_copy(
                update={"path": index_path, "index_name": f"{settings.search.index_name}-rebuild"}
            )
        }
    )

    async def finish(result: rebuild.Rebuild) -> list[str]:
        docs = result.documents()
        if args.execute:
            index = build_search_index(index_settings, read_only=False)
            written = await rebuild.write_index(index, docs)
            notes = [f"index:    {written} documents into {_where(index_settings)}"]
        else:
            where = _where(index_settings)
            notes = [f"DRY RUN: would write {len(docs)} documents into {where} (--execute)"]
        if args.snapshot:
            rebuild.write_snapshot(args.snapshot, result.states)
            notes.append(f"snapshot: {args.snapshot}")
        return notes

    return engine.RebuildTarget(rebuild.Rebuild(codec), finish), f"rebuild{mode}"


def _where(settings: Settings) -> str:
    s = settings.search
    return str(s.path) if s.backend == "tantivy" else f"{s.opensearch_url}/{s.index_name}"


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


async def _archive(settings: Settings, args: argparse.Namespace) -> int:
    store = S3ObjectStore.from_settings(settings.s3)
    try:
        plan = await restore.plan_restore(store, settings.archive.prefix)
        if args.archive_command == "list" or not args.execute:
            for tp, files in sorted(plan.files.items()):
                first, last = files[0].start_offset, files[-1].end_offset
                print(f"{tp.topic}[{tp.partition}]: {len(files)} files, offsets {first}..{last}")
            print(f"total: {plan.records} records in {len(plan.files)} partitions")
            if args.archive_command == "restore":
                print("DRY RUN: nothing produced (--execute)")
            return 0
        result = await restore.restore_from_archive(settings, store)
        print(f"restored {result.records} records into {len(result.restored)} partitions")
        if result.reordered:
            print(f"fingerprints put in spec byte order: {result.reordered}")
        if result.skipped:
            print(f"skipped (already holding records): {len(result.skipped)} partitions")
        for tp, offset in sorted(result.committed.items()):
            print(
                f"group {result.committed_group} committed at {tp.topic}[{tp.partition}] {offset}"
            )
        return 1 if result.moved else 0
    finally:
        store.close()


__all__ = ["add_archive_parser", "add_replay_parser", "archive", "cmd_archive", "cmd_replay"]
