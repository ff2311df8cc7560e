#!/usr/bin/env python3
"""Container healthcheck of the stockpipe image (standard library only; exit 0 healthy, 1 not).

Usage:
  stockpipe-healthcheck URL [--contains TEXT] [--timeout SECONDS]
      healthy when an HTTP GET of URL answers 2xx (and, with --contains, its body has TEXT)
  stockpipe-healthcheck
      with $STOCKPIPE_HEALTHCHECK_URL set: the check above on that URL; otherwise a process
      check: the stockpipe package imports and $STOCKPIPE_DATA_DIR is a writable folder

The image has no curl; compose uses this for the dashboard, the Spark web UIs and the
Airflow API server and scheduler. It prints one line saying why it failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import urllib.error
import urllib.request


def check_url(url: str, contains: str | None, timeout: float) -> str | None:
    """None when healthy, else the reason."""
    if not url.startswith(("http://", "https://")):
        return f"not an http(s) URL: {url}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            status = response.status
            body = response.read(1_000_000).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return f"{url} answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{url} unreachable: {reason}"
    if not 200 <= status < 300:
        return f"{url} answered HTTP {status}"
    if contains is not None and contains not in body:
        return f"{url} answered without {contains!r}"
    return None


def check_process() -> str | None:
    """The package imports and the data folder takes a file."""
    try:
        import stockpipe  # noqa: F401
    except Exception as exc:
        return f"stockpipe does not import: {exc}"
    data_dir = os.environ.get("STOCKPIPE_DATA_DIR", "data")
    try:
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".healthcheck-"):
            pass
    except OSError as exc:
        return f"data folder {data_dir} is not writable: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stockpipe-healthcheck", description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default=os.environ.get("STOCKPIPE_HEALTHCHECK_URL") or None)
    parser.add_argument("--contains", default=None, help="text the response body must contain")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    args = parser.parse_args(argv)
    problem = check_url(args.url, args.contains, args.timeout) if args.url else check_process()
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
