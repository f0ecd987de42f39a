"""The exception that means "bad input": the CLI answers it with one line and exit code 2.

Every validation error of both packages (config, output path, profile, exactness bound)
subclasses :class:`InputError`.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input; the message names the field and the allowed range."""
