"""The Faust worker application factory.

``create_worker_app(settings, deps)`` builds a configured ``faust.App`` with explicit agent and
table names; ``tritontube worker`` runs it. Nothing happens at import.
"""

from __future__ import annotations

import faust

from tritontube.agents import video_state, views
from tritontube.agents.topology import Topology, build_topology
from tritontube.deps import Deps
from tritontube.settings import Settings
from tritontube.streams import broker_compat


def create_worker_app(settings: Settings, deps: Deps) -> tuple[faust.App, Topology]:
    if settings.kafka.embedded_broker_compat:
        broker_compat.apply()
    servers = ";".join(f"kafka://{s.strip()}" for s in settings.kafka.bootstrap_servers.split(","))
    data_dir = settings.worker.data_dir
    app = faust.App(
        settings.worker.app_id,
        broker=servers,
        store=settings.worker.store,
        datadir=str(data_dir),
        autodiscover=False,
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        topic_allow_declare=True,
        broker_session_timeout=settings.kafka.session_timeout_ms / 1000,
        broker_heartbeat_interval=settings.kafka.heartbeat_interval_ms / 1000,
        broker_rebalance_timeout=max(10.0, settings.kafka.session_timeout_ms / 1000 * 2),
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=0,
        web_enabled=True,
        web_bind=settings.worker.web_host,
        web_host=settings.worker.web_host,
        web_port=settings.worker.web_port,
        web_in_thread=False,
        producer_acks=-1,
    )
    topology = build_topology(app, settings)
    video_state.register(app, topology, deps, settings)
    views.register(app, topology, deps)
    return app, topology
