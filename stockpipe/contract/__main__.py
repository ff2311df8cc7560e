"""Regenerate the derived contract files: ``python -m stockpipe.contract``."""

from pathlib import Path

from stockpipe.contract.bar import json_schema_text

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "bar.schema.json"

if __name__ == "__main__":
    SCHEMA_FILE.write_text(json_schema_text())
    print(f"wrote {SCHEMA_FILE}")
