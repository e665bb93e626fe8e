"""The one exception type the library raises for bad input.

The CLI turns a TinycError into one line on stderr and a non-zero exit; anything else is a
bug and keeps its traceback.
"""


class TinycError(Exception):
    """A user-facing error: the message says what is wrong and how to mend it."""

    exit_code = 2


class UnsupportedError(TinycError):
    """The model uses something tinyc cannot compile yet."""
