"""Regenerate the derived contract files: ``python -m stockpipe.contract``."""

from pathlib import Path

from stockpipe.contract.bar import json_schema_text
from stockpipe.fsutil import atomic_write_text

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "bar.schema.json"

if __name__ == "__main__":
    atomic_write_text(SCHEMA_FILE, json_schema_text())
    print(f"wrote {SCHEMA_FILE}")
