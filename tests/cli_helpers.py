"""Run the ``neurosim`` console entry point in-process and capture exit code and output."""

import sys

import pytest

from neurosim.cli import main


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``neurosim ARGS``."""
    old = sys.argv
    sys.argv = ["neurosim", *args]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
            raise SystemExit(0)
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return exc.value.code or 0, out.out, out.err
