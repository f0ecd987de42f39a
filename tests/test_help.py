"""Every option of every command states its default in ``--help``."""

import re

import pytest
import typer
from typer.testing import CliRunner

from neurosim.cli import app

ROOT = typer.main.get_command(app)


def _commands(group=ROOT, path=()):
    for name, cmd in group.commands.items():
        yield (*path, name), cmd
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*path, name))


COMMANDS = dict(_commands())


def _option_help(text: str, flag: str) -> str:
    """The help text of ``flag`` in a rendered --help: its line and its continuation lines."""
    lines = text.splitlines()
    lines = lines[lines.index("Options:"):]
    start = next(i for i, ln in enumerate(lines) if re.match(rf"  {re.escape(flag)}\b", ln))
    block = [lines[start]]
    for ln in lines[start + 1:]:
        if re.match(r"  -", ln) or not ln.strip():  # the next option (continuations indent more)
            break
        block.append(ln)
    return " ".join(block)


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_every_option_states_its_default(path):
    r = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
    assert r.exit_code == 0, r.output
    options = [p for p in COMMANDS[path].params if p.param_type_name == "option"
               and p.name != "help" and not p.required]
    missing = [p.opts[0] for p in options if "[default" not in _option_help(r.output, p.opts[0])]
    assert not missing, f"{' '.join(path)}: {missing}"


def test_the_checker_finds_an_option_without_a_default():
    text = ("Usage: x\n  --b in the description\nOptions:\n  --a <int>  first, unlike\n"
            "             --b [default: 1]\n  --b <str>  second, no default\n  --help  Show")
    assert "[default" in _option_help(text, "--a")
    assert "[default" not in _option_help(text, "--b")


def test_defaults_written_in_the_help_text_are_printed_not_taken_for_markup():
    """rich markup used to swallow a help text's own ``[default: ...]`` (train --lr lost it)."""
    r = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "100"})
    assert "[default: 3e-4" in _option_help(r.output, "--lr")
    r = CliRunner().invoke(app, ["export-spec", "--help"], env={"COLUMNS": "100"})
    n_help = _option_help(r.output, "--n-hidden")
    assert "64" in n_help and "[default: 8]" in n_help  # why export-spec's N differs
