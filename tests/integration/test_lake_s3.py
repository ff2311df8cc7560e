"""An s3:// lake (moto's S3 server on loopback): publish, manifest, idempotency, resume offsets."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from stockpipe.contract.layout import BatchId, cluster_tag
from stockpipe.ingest.broker import free_port, port_answers
from stockpipe.ingest.spool import PartitionBuffer, batch_table, write_batch
from stockpipe.lake.bronze import published_batches, read_manifest, upload_spool
from stockpipe.settings import LakeSettings, Settings
from tests.fixtures.kafka import bronze_offsets

pytestmark = pytest.mark.integration
CLUSTER = "s3-test-cluster"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port (stopped after the module)."""
    binary = shutil.which("moto_server")
    if binary is None:
        pytest.skip("moto_server (moto[server]) is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while not port_answers(port):
            assert proc.poll() is None, "moto_server exited"
            assert time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def s3_settings(settings: Settings, s3_endpoint: str) -> Settings:
    options = {"endpoint_url": s3_endpoint, "key": "test", "secret": "test", "region": "us-east-1"}
    s = settings.model_copy(
        update={"lake": LakeSettings(root="s3://lake-bucket/stockpipe", storage_options=options)}
    )
    import pyarrow.fs as pafs

    admin = pafs.S3FileSystem(
        access_key="test", secret_key="test", region="us-east-1", scheme="http",
        endpoint_override=s3_endpoint.removeprefix("http://"), allow_bucket_creation=True,
    )  # fmt: skip
    admin.create_dir("lake-bucket")
    return s


def _spool(settings: Settings, partition: int, first: int, n: int) -> BatchId:
    buf = PartitionBuffer()
    for i in range(n):
        buf.offsets.append(first + i)
        buf.timestamps.append(1_700_000_000_000 + i)
        buf.keys.append(b"IBM")
        buf.values.append(b'{"n": %d}' % (first + i))
    batch = BatchId(settings.kafka.topic, cluster_tag(CLUSTER), partition, first, first + n - 1)
    write_batch(settings.spool_dir, batch, batch_table(settings.kafka.topic, partition, buf, CLUSTER))
    return batch


def test_upload_to_s3_lake(s3_settings: Settings) -> None:
    batches = [_spool(s3_settings, 0, 0, 10), _spool(s3_settings, 1, 0, 5), _spool(s3_settings, 0, 10, 3)]
    res = upload_spool(s3_settings)
    assert (res.files, res.records) == (3, 18)
    entries = read_manifest(s3_settings)
    assert {e.file for e in entries} == {b.file_name for b in batches}
    assert all(e.path.startswith("s3://lake-bucket/stockpipe/bronze/") for e in entries)
    assert sorted(published_batches(s3_settings)) == sorted(batches)
    offsets = bronze_offsets(s3_settings)
    assert offsets == sorted([(0, i) for i in range(13)] + [(1, i) for i in range(5)])
    _spool(s3_settings, 1, 0, 5)  # a re-delivered identical file
    again = upload_spool(s3_settings)
    assert (again.files, again.skipped_existing) == (0, 1)
    assert len(bronze_offsets(s3_settings)) == 18
