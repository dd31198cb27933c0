"""The one exception type seisinv raises for problems a user can act on."""

from __future__ import annotations


class SeisinvError(Exception):
    """A problem with the user's input, files or configuration.

    The message names the file or argument, what was found and what was expected; arguments
    are named as in Python (``overwrite=True``), never as CLI flags. ``argument``, when set, is
    the Python argument the message starts with, which the CLI shows as its flag.
    The CLI prints it as one line and exits non-zero; library code never calls ``sys.exit``.
    """

    def __init__(self, message: str = "", argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


class DataError(SeisinvError):
    """A data file or array is missing, malformed, or has the wrong shape, dtype or units."""


class ConfigError(SeisinvError):
    """A configuration file or ``--set`` override is invalid."""


class CheckpointError(SeisinvError):
    """A checkpoint is missing, corrupted, or does not match the model it is loaded into."""


class ArgumentError(SeisinvError):
    """A function argument (a CLI flag) with an unusable value.

    The message starts with the Python argument name (``limit -2: ...``); ``argument`` holds that
    name so the CLI can show it as its flag (``--limit -2: ...``).
    """

    def __init__(self, message: str, argument: str) -> None:
        super().__init__(message, argument)
