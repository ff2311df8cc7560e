"""Driver-side file operations on the lake through Spark's own Hadoop FileSystem.

The cleaning job reads the bronze manifest, keeps its ledger and swap journal, and swaps silver
partition directories in by renaming. Doing that through the Hadoop FileSystem of the running
Spark session means every scheme Spark can write (``file://``, ``hdfs://``, ``s3a://`` ...) works
the same, with the same credentials and configuration, and that renames are the atomic
``rename(2)`` on a local disk and the atomic NameNode rename on HDFS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class Entry:
    """One directory entry: its name (last path component), full URI, kind and size."""

    name: str
    uri: str
    is_dir: bool
    size: int


class LakeFS:
    """A thin typed wrapper over ``org.apache.hadoop.fs.FileSystem`` for one lake root."""

    def __init__(self, spark: SparkSession, root_uri: str) -> None:
        jvm: Any = spark._jvm
        conf = spark._jsc.hadoopConfiguration()
        self._jvm = jvm
        self._path_cls = jvm.org.apache.hadoop.fs.Path
        uri = self._path_cls(root_uri).toUri()
        # A private instance: switching off .crc side files for our small JSON state files
        # must not change how Spark's own (cached) FileSystem writes data files.
        self._fs = jvm.org.apache.hadoop.fs.FileSystem.newInstance(uri, conf)
        self._fs.setWriteChecksum(False)

    def _p(self, uri: str) -> Any:
        return self._path_cls(uri)

    def exists(self, uri: str) -> bool:
        return bool(self._fs.exists(self._p(uri)))

    def list(self, uri: str) -> list[Entry]:
        """The entries of a directory, sorted by name; empty when it does not exist."""
        if not self.exists(uri):
            return []
        out = [
            Entry(
                name=str(st.getPath().getName()),
                uri=f"{uri.rstrip('/')}/{st.getPath().getName()}",
                is_dir=bool(st.isDirectory()),
                size=int(st.getLen()),
            )
            for st in self._fs.listStatus(self._p(uri))
        ]
        return sorted(out, key=lambda e: e.name)

    def read_bytes(self, uri: str) -> bytes:
        stream = self._fs.open(self._p(uri))
        try:
            return bytes(self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Create or overwrite a file (not atomic on its own: see ``write_atomic``)."""
        stream = self._fs.create(self._p(uri), True)
        try:
            stream.write(bytearray(data))
            stream.hsync()
        finally:
            stream.close()

    def write_atomic(self, uri: str, data: bytes) -> None:
        """Write a file that readers see either whole or not at all (temp file + rename)."""
        parent, name = uri.rsplit("/", 1)
        tmp = f"{parent}/.{name}.tmp"
        self.write_bytes(tmp, data)
        if self.exists(uri):
            self.delete(uri)
        self.rename(tmp, uri)

    def rename(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst`` (which must not exist); parents of ``dst`` are created."""
        parent = dst.rsplit("/", 1)[0]
        self.mkdirs(parent)
        if not self._fs.rename(self._p(src), self._p(dst)):
            raise OSError(f"could not rename {src} to {dst}")

    def delete(self, uri: str) -> None:
        """Delete a file or a directory tree (no-op when absent)."""
        self._fs.delete(self._p(uri), True)

    def mkdirs(self, uri: str) -> None:
        self._fs.mkdirs(self._p(uri))

    def close(self) -> None:
        self._fs.close()
