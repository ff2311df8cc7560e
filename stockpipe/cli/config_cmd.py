"""``stockpipe config``: show the effective settings, secrets masked."""

from __future__ import annotations

import json

from rich.syntax import Syntax

from stockpipe.cli.app import app
from stockpipe.cli.ui import console
from stockpipe.settings import get_settings


@app.command("config")
def config_cmd(
    as_json: bool = False,
) -> None:
    """Print the effective settings (env STOCKPIPE_*, .env, stockpipe.toml); secrets are masked.

    Example:  STOCKPIPE_SPARK_MASTER=spark://127.0.0.1:7077 stockpipe config --as-json
    """
    data = get_settings().masked()
    text = json.dumps(data, indent=2)
    if as_json:
        print(text)
    else:
        console.print(Syntax(text, "json", word_wrap=True))
