"""``neurosim claims``: run the sweeps behind the paper's three claims and write the verdict
tables (:func:`neurosim.claims.run_claims`). Register with ``app.command()(claims)``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Opt = typer.Option


def claims(
    out: Annotated[Path | None, Opt(help="folder of the claims sweeps [default: runs/claims]")] = None,
    quick: Annotated[bool, Opt(help="a CI-sized version (each sweep's quick table); not evidence")] = False,
    tables_only: Annotated[
        bool, Opt(help="train nothing: tables from the cells finished under --out")
    ] = False,
    workers: Annotated[int, Opt(help="local worker processes (one torch thread each)")] = 1,
    executor: Annotated[str, Opt(help="local, dask or serial")] = "local",
) -> None:
    """Settle the paper's claims: every claims sweep, then claims.md (verdicts) and figures."""
    from neurosim.claims import run_claims
    from neurosim.report import progress_bar

    out = out or Path("runs") / f"claims{'-quick' if quick else ''}"
    with progress_bar("claims sweep cells") as advance:
        md, figures = run_claims(
            out, quick=quick, train=not tables_only, workers=workers, executor=executor, progress=advance
        )
    for p in figures:
        typer.echo(f"figure {p}")
    typer.echo(f"verdicts written to {md}")
