"""Lake filesystem selection by URI."""

from __future__ import annotations

from pathlib import Path

import pytest
from fsspec.implementations.local import LocalFileSystem

from stockpipe.errors import ConfigError
from stockpipe.lake.fs import filesystem, filesystem_for, scheme_of
from stockpipe.settings import LakeSettings, Settings


def test_default_lake_is_local_under_data_dir(settings: Settings) -> None:
    fs, root = filesystem(settings)
    assert isinstance(fs, LocalFileSystem)
    assert root == str(settings.data_path / "lake")


@pytest.mark.parametrize("form", ["uri", "plain"])
def test_file_uri_and_plain_path(tmp_path: Path, form: str) -> None:
    target = tmp_path / "my lake"
    uri = target.as_uri() if form == "uri" else str(target)
    fs, root = filesystem_for(uri, {})
    assert root == str(target)
    fs.pipe_file(f"{root}/a/b.txt", b"hi")  # parents are created
    assert (target / "a" / "b.txt").read_bytes() == b"hi"


def test_s3_root_is_bucket_and_prefix() -> None:
    fs, root = filesystem_for(
        "s3://bucket/some/prefix/", {"endpoint_url": "http://127.0.0.1:9", "anon": "true"}
    )
    assert root == "bucket/some/prefix"
    assert fs.protocol == "s3"
    # the s3fs-style options became pyarrow S3 arguments: endpoint split, anon as a bool
    (params,) = fs.fs.__reduce__()[1]
    assert (params["scheme"], params["endpoint_override"]) == ("http", "127.0.0.1:9")
    assert params["anonymous"] is True
    assert params["allow_delayed_open"] is True
    assert scheme_of("s3://bucket/x") == "s3"


def test_s3_unknown_option_without_s3fs_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "s3fs", None)  # as if s3fs were not installed
    with pytest.raises(ConfigError, match="s3fs"):
        filesystem_for("s3://bucket/x", {"client_kwargs": "{}"})


def test_unsupported_scheme_and_unreachable_hdfs_are_clear(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="unsupported scheme 'gs'"):
        filesystem_for("gs://b/x", {})
    s = settings.model_copy(update={"lake": LakeSettings(root="hdfs://127.0.0.1:9/lake")})
    with pytest.raises(ConfigError, match=r"HDFS at 127\.0\.0\.1:9") as info:
        filesystem(s)
    assert "\n" not in str(info.value)
