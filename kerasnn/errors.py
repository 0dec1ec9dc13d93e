"""Exception types shared by the library and the command line.

Every error a user can cause derives from :class:`KerasnnError`; the command line
prints its message as one line on stderr and exits with code 2. Each also derives
from the built-in type a Python caller would expect (``ValueError``, ``OSError``).
"""


class KerasnnError(Exception):
    """Base class of the errors a user can cause (bad file, bad option, bad model)."""


class DataError(KerasnnError, ValueError):
    """A data file is missing, unreadable or violates the phone-price schema.

    The message names the file and, where there is one, the line (header = line 1),
    the column and the offending value.
    """


class ModelFileError(KerasnnError, ValueError):
    """A saved model or run directory is missing, invalid or does not match its record."""


class OutputError(KerasnnError, OSError):
    """An output path cannot be written."""
