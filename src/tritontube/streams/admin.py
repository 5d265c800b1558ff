"""Topic administration from the catalogue."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from tritontube.settings import KafkaSettings
from tritontube.streams import catalogue

log = logging.getLogger(__name__)


def new_topics(kafka: KafkaSettings) -> list[NewTopic]:
    topics = []
    for spec in catalogue.TOPICS:
        partitions = spec.partitions or kafka.partitions
        for name in (spec.name, spec.dlq):
            config = spec.config() if name == spec.name else {"cleanup.policy": "delete"}
            topics.append(
                NewTopic(name, partitions, kafka.replication_factor, topic_configs=config)
            )
    return topics


async def ensure_topics(kafka: KafkaSettings) -> list[str]:
    """Create every catalogue topic (and its DLQ) that does not exist yet; return those created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in new_topics(kafka) if t.name not in existing]
        created = []
        for topic in missing:
            try:
                await admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                continue
        if created:
            log.info("created topics: %s", ", ".join(created))
        return created
    finally:
        await admin.close()
