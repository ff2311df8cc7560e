"""Orchestration: the seven pipeline steps, `run`, `stream`, status and locking."""
