from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from stockpipe.errors import PipelineLockedError
from stockpipe.orchestration.lock import pipeline_lock
from stockpipe.settings import Settings


def test_second_holder_is_refused_with_a_clear_message(settings: Settings) -> None:
    with (
        pipeline_lock(settings),
        pytest.raises(PipelineLockedError, match="in use by stockpipe run"),
        pipeline_lock(settings),
    ):
        pass
    with pipeline_lock(settings):  # released after the first holder left
        pass


def test_lock_of_a_killed_process_does_not_block(settings: Settings) -> None:
    code = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from stockpipe.orchestration.lock import pipeline_lock
        from stockpipe.settings import Settings
        s = Settings(data_dir=Path({str(settings.data_dir)!r}))
        with pipeline_lock(s):
            os.kill(os.getpid(), 9)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert proc.returncode == -9
    with pipeline_lock(settings):
        pass
