"""The errors that minigrad.data raises, so a caller can catch exactly one kind.

Every message says three things a student needs to act on it: which file,
where minigrad looked for it, and what to do next.
"""


class DatasetNotFoundError(FileNotFoundError):
    """A data set file is missing (and download=False, or it is not downloadable)."""


class DatasetFormatError(ValueError):
    """A data set file exists but is not in the expected format (bad magic, size, shape...)."""


class DownloadError(OSError):
    """Every mirror failed to deliver a file whose checksum matches."""


class UnsafePickleError(DatasetFormatError):
    """A pickle asked for a Python object that minigrad refuses to create."""
