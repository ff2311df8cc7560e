"""Errors that the CLI turns into one clear sentence (never a traceback)."""


class StockpipeError(Exception):
    """Base class: the message is a complete sentence meant for the user."""


class ConfigError(StockpipeError):
    """Settings are missing or wrong."""


class BrokerUnavailableError(StockpipeError):
    """The Kafka cluster cannot be reached."""


class StorageError(StockpipeError):
    """Writing to the spool or the lake failed (disk full, read-only, a file where a folder must be)."""


class StateFileError(StockpipeError):
    """A state file (manifest, ledger, load state) is corrupt or unreadable."""


class PipelineLockedError(StockpipeError):
    """Another stockpipe process holds the data folder's lock."""


class StepFailedError(StockpipeError):
    """A pipeline step failed; ``step`` names it."""

    def __init__(self, step: str, cause: str) -> None:
        super().__init__(f"Step {step} failed: {cause}")
        self.step = step
        self.cause = cause


def first_line(exc: BaseException) -> str:
    """An exception's first message line, without a trailing period (to end our own sentence)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.rstrip(".")
