"""``neurosim profiles`` (list the shipped precision profiles) and ``profiles show NAME``."""

from __future__ import annotations

from typing import Annotated

import typer

profiles_app = typer.Typer(help="Precision profiles: list them, or show one as TOML.", rich_markup_mode=None,
                           invoke_without_command=True)


@profiles_app.callback()
def list_all(ctx: typer.Context) -> None:
    """List the shipped profiles, one line each: name and what it models."""
    if ctx.invoked_subcommand is not None:
        return
    from hw_models.profile import list_profiles, load_profile

    names = list_profiles()
    width = max(map(len, names))
    for name in names:
        typer.echo(f"{name:<{width}}  {load_profile(name).description}")


@profiles_app.command()
def show(name: Annotated[str, typer.Argument(help="profile name or TOML path")]) -> None:
    """Print one profile as TOML (copy it, edit it, pass its path to --profile)."""
    from hw_models.profile import load_profile

    typer.echo(load_profile(name).to_toml())
