"""Errors the CLI turns into one line: bad input (exit 2), interruption (exit 130).

:class:`InputError` is shared with ``hw_models`` (defined there, re-exported here): every
validation error of both packages subclasses it.
"""

from __future__ import annotations

from hw_models.errors import FileFormatError, InputError

__all__ = ["FileFormatError", "InputError", "Interrupted"]


class Interrupted(Exception):
    """Work stopped by Ctrl-C; the message says what was kept and how to resume (exit 130)."""
