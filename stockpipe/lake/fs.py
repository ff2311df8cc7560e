"""The lake's filesystem, chosen by the root URI: ``file://`` (or a plain path), ``hdfs://``, ``s3://``.

``filesystem(settings)`` returns an fsspec filesystem and the root path *inside* it (no
scheme), so ``layout.bronze_file(root, ...)`` gives a path the filesystem understands.
``settings.lake.storage_options`` are passed to the filesystem's constructor.
"""

from __future__ import annotations

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
