"""``python -m stockpipe`` is the ``stockpipe`` command."""

from stockpipe.cli import main

main()
