"""Bronze manifest entries: round trip, corruption, listing by name."""

from __future__ import annotations

import re

import pytest

from stockpipe.contract.layout import BatchId, bronze_manifest_dir
from stockpipe.errors import StateFileError
from stockpipe.lake.manifest import ManifestEntry, published_batches, read_manifest
from stockpipe.settings import Settings


def _entry(name: str) -> ManifestEntry:
    b = BatchId.parse(name)
    return ManifestEntry(
        file=name, path=f"file:///x/{name}", topic=b.topic, cluster_id="c", partition=b.partition,
        first_offset=b.first, last_offset=b.last, records=b.last - b.first + 1, bytes=10, sha256="ab" * 32,
        ingest_date="2024-01-02", uploaded_at="2024-01-02T00:00:00+00:00",
    )  # fmt: skip


def _write(settings: Settings, entry: ManifestEntry, raw: bytes | None = None) -> None:
    mdir = bronze_manifest_dir(str(settings.data_path / "lake"), entry.topic)
    from pathlib import Path

    Path(mdir).mkdir(parents=True, exist_ok=True)
    Path(mdir, entry.file + ".json").write_bytes(raw if raw is not None else entry.to_json())


def test_round_trip_and_listing(settings: Settings) -> None:
    names = [BatchId(settings.kafka.topic, "abcabcabcabc", p, 0, 9 + p).file_name for p in range(3)]
    for name in names:
        _write(settings, _entry(name))
    entries = read_manifest(settings)
    assert [e.file for e in entries] == sorted(names)
    assert entries[0] == _entry(entries[0].file)
    assert sorted(published_batches(settings)) == sorted(BatchId.parse(n) for n in names)


@pytest.mark.parametrize(
    "raw",
    [b"{broken", b"[1, 2]", b'{"file": "x"}', b'{"records": "many"}'],
)
def test_corrupt_entry_names_the_file(settings: Settings, raw: bytes) -> None:
    name = BatchId(settings.kafka.topic, "abcabcabcabc", 0, 0, 9).file_name
    entry = _entry(name)
    if raw == b'{"records": "many"}':
        import json

        data = json.loads(entry.to_json())
        data["records"] = "many"
        raw = json.dumps(data).encode()
    _write(settings, entry, raw)
    with pytest.raises(StateFileError, match=re.escape(name)):
        read_manifest(settings)


def test_empty_lake_has_no_manifest(settings: Settings) -> None:
    assert read_manifest(settings) == []
    assert published_batches(settings) == []
