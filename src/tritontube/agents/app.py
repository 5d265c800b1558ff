"""The Faust worker application factory.

``create_worker_app(settings, deps)`` builds a configured ``faust.App`` with explicit agent and
table names; ``tritontube worker`` runs it. Nothing happens at import.
"""

from __future__ import annotations

from dataclasses import dataclass

import faust
from mode import Service

from tritontube.agents import (
    analytics,
    chunks,
    faust_fixes,
    indexer,
    lag,
    logcontext,
    owners,
    queries,
    queue,
    transcode,
    video_state,
)
from tritontube.agents.batching import BatchingApp
from tritontube.agents.topology import Topology, build_topology
from tritontube.deps import Deps
from tritontube.indexer.factory import build_search_index
from tritontube.indexer.port import SearchIndex
from tritontube.settings import Settings
from tritontube.streams import broker_compat

BATCH_RECORDS = 2000


@dataclass(frozen=True)
class WorkerApp:
    """The Faust app and what its agents share."""

    app: faust.App
    topology: Topology
    search: SearchIndex


def _faust_app(settings: Settings) -> BatchingApp:
    servers = ";".join(f"kafka://{s.strip()}" for s in settings.kafka.bootstrap_servers.split(","))
    return BatchingApp(
        settings.worker.app_id,
        broker=servers,
        store=settings.worker.store,
        # Faust's own ends a rebalance in an order that can lose fetched records.
        TableManager=faust_fixes.TableManager,
        datadir=str(settings.worker.data_dir),
        autodiscover=False,
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        topic_allow_declare=True,
        broker_session_timeout=settings.kafka.session_timeout_ms / 1000,
        broker_heartbeat_interval=settings.kafka.heartbeat_interval_ms / 1000,
        broker_rebalance_timeout=max(10.0, settings.kafka.session_timeout_ms / 1000 * 2),
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=settings.worker.standby_replicas,
        web_enabled=True,
        web_bind=settings.worker.web_host,
        web_host=settings.worker.web_host,
        web_port=settings.worker.web_port,
        # Shared with the group at every rebalance: where peers and the API reach us.
        canonical_url=settings.worker_advertised_url(),
        web_in_thread=False,
        # Faust's own views would serve tables and internals without our token.
        web_router_enabled=False,
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        producer_acks=-1,
        # Let the producer batch the agents' changelog and output records (fewer requests).
        producer_linger=0.005,
        # The batched agents hand aiokafka whole batches (agents.batching): one batch per
        # partition in flight, so a small batch size would cap their rate.
        producer_max_batch_size=512 * 1024,
        # Records per fetch: the batched agents' batch size.
        broker_max_poll_records=BATCH_RECORDS,
        # Faust polls from its own fetcher, but a stalled stream buffer must not make a long
        # transcode look like a dead consumer: allow a whole ffmpeg run between polls.
        broker_max_poll_interval=max(1000.0, settings.transcode.longest_run_seconds + 300.0),
    )


def create_worker_app(settings: Settings, deps: Deps) -> WorkerApp:
    faust_fixes.apply()
    if settings.kafka.embedded_broker_compat:
        broker_compat.apply()
    app = _faust_app(settings)
    app.sensors.add(logcontext.LogContextSensor())  # topic/partition/offset/video_id in logs
    topology = build_topology(app, settings)
    search = build_search_index(settings, read_only=False)

    @app.service
    class SearchIndexLifecycle(Service):
        """Opens the search index with the worker and closes it after (the writer itself
        opens on the search-writer agent's first write: ``agents.indexer``)."""

        async def on_start(self) -> None:
            await search.ensure()

        async def on_stop(self) -> None:
            await search.close()

    worker = WorkerApp(app=app, topology=topology, search=search)
    video_state.register(app, topology, deps, settings)
    if settings.worker.transcode_enabled:
        transcode.register(app, topology, deps, settings)
        chunks.register(app, topology, deps, settings)
    owners.register(app, topology, deps)
    queries.register(app, topology, deps, settings)
    queue.register(app, topology, deps, settings)
    analytics.register(app, topology, deps, settings)
    indexer.register(app, topology, deps, settings, search)
    app.batch_router.subscribe(app)
    lag.register(app, settings)
    return worker
