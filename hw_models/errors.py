"""The exception that means "bad input", and the one way files are read as text.

Every validation error of both packages (config, output path, profile, exactness bound, a
damaged file) subclasses :class:`InputError`; the CLI answers it with one line and exit code 2.
``neurosim.errors`` re-exports it, so the two packages share one class.
"""

from __future__ import annotations

import tomllib
from pathlib import Path


class InputError(ValueError):
    """Bad input; the message names the field (or file) and what is wrong with it."""


class FileFormatError(InputError):
    """A file cannot be read or decoded; the message names the file and the problem."""


def read_text(path: str | Path, what: str, error: type[InputError] = FileFormatError) -> str:
    """The UTF-8 text of ``path``; a missing, unreadable or undecodable file raises ``error``
    naming ``what`` (e.g. "profile") and the file."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} file {path} not found") from None
    except IsADirectoryError:
        raise error(f"{what} file {path} is a directory, not a file") from None
    except UnicodeDecodeError as err:
        raise error(f"{what} file {path} is not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise error(f"{what} file {path} cannot be read: {err.strerror or err}") from None


def read_toml(path: str | Path, what: str, error: type[InputError] = FileFormatError) -> dict:
    """A TOML file as a dict; unreadable or malformed TOML raises ``error`` naming the file."""
    text = read_text(path, what, error)
    if "\x00" in text:
        raise error(f"{what} file {path} holds NUL bytes: not a TOML file")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise error(f"{what} file {path}: malformed TOML: {err}") from None
