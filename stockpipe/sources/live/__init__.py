"""Live sources: run until stopped, checkpointed, feeding the idempotent producer."""
