"""The lake's filesystem, chosen by the root URI: ``file://`` (or a plain path), ``hdfs://``, ``s3://``.

``filesystem(settings)`` returns an fsspec filesystem and the root path *inside* it (no
scheme), so ``layout.bronze_file(root, ...)`` gives a path the filesystem understands.
``settings.lake.storage_options`` are passed to the filesystem's constructor.

``LakeFS`` is the same filesystem addressed by full URIs (``file:///…``, ``hdfs://nn:8020/…``,
``s3a://bucket/…``: the paths Spark reads and writes), for the cleaning job's driver-side work:
manifest reads, ledger and journal, partition listing and swaps. Renames are the filesystem's
own: ``rename(2)`` on a local disk and the NameNode rename on HDFS (pyarrow's libhdfs client),
both atomic. S3 has no rename: ``atomic_rename`` is False there and a directory "rename" is a
copy of every object followed by a delete (see ``clean.commit`` for how a swap stays redoable).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from stockpipe.errors import ConfigError

if TYPE_CHECKING:
    from stockpipe.settings import Settings

# s3fs-style storage option names -> pyarrow S3FileSystem arguments (the fallback without s3fs).
_ARROW_S3_OPTIONS = {
    "key": "access_key",
    "access_key": "access_key",
    "aws_access_key_id": "access_key",
    "secret": "secret_key",
    "secret_key": "secret_key",
    "aws_secret_access_key": "secret_key",
    "token": "session_token",
    "session_token": "session_token",
    "endpoint_url": "endpoint_override",
    "endpoint_override": "endpoint_override",
    "region": "region",
    "region_name": "region",
    "anon": "anonymous",
}


def scheme_of(uri: str) -> str:
    """``file``, ``hdfs`` or ``s3`` (a plain path is ``file``)."""
    scheme = urlsplit(uri).scheme.lower()
    return "file" if scheme in ("", "file") or len(scheme) == 1 else scheme  # len 1: a Windows drive


def filesystem(settings: Settings) -> tuple[Any, str]:
    """The lake filesystem and the root path inside it."""
    return filesystem_for(settings.lake_root, dict(settings.lake.storage_options))


def filesystem_for(uri: str, options: dict[str, str]) -> tuple[Any, str]:
    """Filesystem and in-filesystem root for a lake URI (see ``filesystem``)."""
    scheme = scheme_of(uri)
    parts = urlsplit(uri)
    if scheme == "file":
        from fsspec.implementations.local import LocalFileSystem

        path = unquote(parts.path) if parts.scheme else uri
        return LocalFileSystem(auto_mkdir=True), str(Path(path).expanduser().resolve())
    if scheme == "hdfs":
        return _hdfs(parts.hostname or "default", parts.port or 0, options), unquote(parts.path).rstrip(
            "/"
        ) or "/"
    if scheme in ("s3", "s3a"):
        root = f"{parts.netloc}{unquote(parts.path)}".rstrip("/")
        if not parts.netloc:
            raise ConfigError(f"The lake root {uri!r} names no S3 bucket.")
        return _s3(options), root
    raise ConfigError(
        f"The lake root {uri!r} has an unsupported scheme {scheme!r}: use file://, hdfs:// or s3://."
    )


def _hdfs(host: str, port: int, options: dict[str, str]) -> Any:
    from fsspec.implementations.arrow import HadoopFileSystem

    try:
        return HadoopFileSystem(host=host, port=port, **options)
    except (OSError, ImportError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ConfigError(
            f"Cannot connect to HDFS at {host}:{port} ({first}); pyarrow needs libhdfs and a JVM: "
            "set HADOOP_HOME, JAVA_HOME and CLASSPATH (hadoop classpath --glob)."
        ) from exc


def _s3(options: dict[str, str]) -> Any:
    try:
        import s3fs
    except ImportError:
        s3fs = None
    if s3fs is not None:
        return s3fs.S3FileSystem(**options)
    return _arrow_s3(options)


def _arrow_s3(options: dict[str, str]) -> Any:
    """pyarrow's built-in S3 client behind fsspec, used when s3fs is not installed."""
    try:
        import pyarrow.fs as pafs
        from fsspec.implementations.arrow import ArrowFSWrapper
    except ImportError as exc:  # pragma: no cover - pyarrow is a dependency
        raise ConfigError("An s3:// lake needs the s3fs package: pip install s3fs.") from exc
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        name = _ARROW_S3_OPTIONS.get(key)
        if name is None:
            raise ConfigError(
                f"Lake storage option {key!r} needs the s3fs package (pip install s3fs); without it "
                f"only {', '.join(sorted(_ARROW_S3_OPTIONS))} are understood."
            )
        kwargs[name] = value
    endpoint = kwargs.get("endpoint_override")
    if isinstance(endpoint, str) and "://" in endpoint:
        scheme, _, rest = endpoint.partition("://")
        kwargs["endpoint_override"] = rest
        kwargs["scheme"] = scheme
    if "anonymous" in kwargs:
        kwargs["anonymous"] = str(kwargs["anonymous"]).lower() in ("1", "true", "yes")
    # delayed open: an object smaller than one part is written with a single PutObject
    kwargs["allow_delayed_open"] = True
    return ArrowFSWrapper(pafs.S3FileSystem(**kwargs))


@dataclass(frozen=True)
class Entry:
    """One directory entry: its name (last path component), full URI, kind and size."""

    name: str
    uri: str
    is_dir: bool
    size: int


class LakeFS:
    """The lake filesystem addressed by Spark-style URIs under one lake root."""

    def __init__(self, root_uri: str, options: dict[str, str] | None = None) -> None:
        self.scheme = scheme_of(root_uri)
        self.fs, _ = filesystem_for(root_uri, dict(options or {}))
        #: True where a rename is one atomic metadata operation (local disk, HDFS), False on S3.
        self.atomic_rename = self.scheme in ("file", "hdfs")

    def path(self, uri: str) -> str:
        """The in-filesystem path of a lake URI (``s3a://b/k`` -> ``b/k``, ``file:///x`` -> ``/x``)."""
        parts = urlsplit(uri)
        if self.scheme == "file":
            return unquote(parts.path) if parts.scheme else uri
        if self.scheme in ("s3", "s3a"):
            return f"{parts.netloc}{unquote(parts.path)}".rstrip("/")
        return unquote(parts.path).rstrip("/") or "/"

    def exists(self, uri: str) -> bool:
        return bool(self.fs.exists(self.path(uri)))

    def list(self, uri: str) -> list[Entry]:
        """The entries of a directory, sorted by name; empty when it does not exist."""
        try:
            infos = self.fs.ls(self.path(uri), detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        base = uri.rstrip("/")
        out = []
        for info in infos:
            name = str(info["name"]).rstrip("/").rsplit("/", 1)[-1]
            if not name or f"{base}/{name}".rstrip("/") == base:
                continue  # some stores list the directory itself
            is_dir = info.get("type") == "directory"
            out.append(Entry(name, f"{base}/{name}", is_dir, int(info.get("size") or 0)))
        return sorted(out, key=lambda e: e.name)

    def read_bytes(self, uri: str) -> bytes:
        return bytes(self.fs.cat_file(self.path(uri)))

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Create or overwrite a file (one PUT on S3; not atomic on a disk: see ``write_atomic``)."""
        path = self.path(uri)
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        self.fs.pipe_file(path, data)

    def write_atomic(self, uri: str, data: bytes) -> None:
        """Write a file readers see whole or not at all: temp file + rename, or one PUT on S3."""
        if not self.atomic_rename:
            self.write_bytes(uri, data)  # an S3 object appears whole on its PUT
            return
        parent, name = uri.rsplit("/", 1)
        tmp = f"{parent}/.{name}.tmp"
        self.write_bytes(tmp, data)
        if self.scheme == "file":
            os.replace(self.path(tmp), self.path(uri))  # atomic, replaces an existing file
            return
        self.delete(uri)
        self.rename(tmp, uri)

    def rename(self, src: str, dst: str) -> None:
        """Move ``src`` (file or directory) to ``dst``, which must not exist; parents are created.

        One atomic rename on a local disk and on HDFS; on S3 a copy of every object, then a
        delete of the source (so an interrupted move leaves the source complete until its copy is).
        """
        if self.exists(dst):
            raise OSError(f"could not rename {src} to {dst}: the target exists")
        s, d = self.path(src), self.path(dst)
        self.fs.makedirs(d.rsplit("/", 1)[0], exist_ok=True)
        if self.scheme == "file":
            os.rename(s, d)
        elif self.atomic_rename:
            self.fs.mv(s, d)
        else:
            self.copy_tree(src, dst)
            self.fs.rm(s, recursive=True)

    def copy_tree(self, src: str, dst: str) -> None:
        """Copy a file, or every file under a directory, to the same relative names under ``dst``."""
        s, d = self.path(src), self.path(dst)
        if not self.fs.isdir(s):
            self.fs.cp_file(s, d)
            return
        for path in self.fs.find(s):
            rel = str(path)[len(s.rstrip("/")) :].lstrip("/")
            target = f"{d}/{rel}"
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self.fs.cp_file(path, target)

    def delete(self, uri: str) -> None:
        """Delete a file or a directory tree (no-op when absent)."""
        path = self.path(uri)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def mkdirs(self, uri: str) -> None:
        self.fs.makedirs(self.path(uri), exist_ok=True)

    def close(self) -> None:
        """Nothing to release (fsspec caches its clients); kept so callers can use try/finally."""
