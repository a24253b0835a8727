"""The errors kag raises for problems with data or the cache (the command line exits 1 on them).

Bad arguments raise the built-in ``ValueError`` (exit 2): "width=0 is not allowed: ...".
Everything here is a :class:`KagError`, so a caller can tell "you asked for something impossible"
from "the data or the cache is broken" without parsing messages.
"""

from __future__ import annotations


class KagError(Exception):
    """A problem with data, the cache or concurrent work, not with the arguments."""


class DataUnavailableError(KagError):
    """No source of MNIST worked; the message says what was tried and how to supply the files."""


class CorruptDataError(KagError):
    """A data file does not parse or does not match its pinned digest."""


class CorruptEntryError(KagError):
    """A cache file does not match its recorded digest, its key, or cannot be parsed."""


class MissingResults(KagError, LookupError):
    """A metric table is not in the store and computing it was not allowed."""


class Busy(KagError):
    """Another process holds the lock for this work (raised only when asked not to wait)."""


class StoreWriteError(KagError):
    """Writing to the store failed (disk full, file-size limit, read-only): the message names the path."""
