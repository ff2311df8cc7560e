"""Debian's Chromium for browser tests (driven by Playwright with ``executable_path``)."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Headless as root on a machine whose only network is loopback: no sandbox, no GPU, and none
# of Chromium's own background connections (they would be refused, many at a time).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
