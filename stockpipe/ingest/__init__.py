"""Kafka ingest: embedded broker, topic admin, idempotent producer, exactly-once consumer to spool."""
