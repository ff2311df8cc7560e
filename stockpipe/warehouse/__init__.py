"""Warehouse: idempotent loads into DuckDB or Snowflake, and the dbt runner for gold."""
