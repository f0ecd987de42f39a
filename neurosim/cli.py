"""Command line: typer options → a config → one call of the Python API → a report.

Bad input of any kind (an option out of range, an unknown name, an unusable output path, a
malformed profile) is answered with one line ``error: ...`` on stderr and exit code 2.
"""

from __future__ import annotations

import sys
import warnings
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from typer._click import exceptions as click_exc  # typer vendors click; no public alias

from neurosim.cli_lyapunov import lyapunov
from neurosim.cli_profiles import profiles_app
from neurosim.cli_spec import cost, export_spec, verify_spec
from neurosim.cli_sweep import plot, reproduce, sweep
from neurosim.errors import InputError
from neurosim.report import progress_bar, summary_table

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="neurosim: initial gain, gradient flossing and e-prop, in float and fixed point.")

app.add_typer(profiles_app, name="profiles")
for command in (lyapunov, sweep, plot, reproduce, cost):
    app.command()(command)
app.command("export-spec")(export_spec)
app.command("verify-spec")(verify_spec)
Opt = typer.Option


@app.callback()
def _commands() -> None:
    """neurosim: initial gain, gradient flossing and e-prop, in float and fixed point."""


def _default_out(kind: str, *parts) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / "-".join([stamp, kind, *map(str, parts)])


@app.command()
def train(
    task: Annotated[str, Opt(help="romo, 2af or dms")] = "romo",
    rule: Annotated[str, Opt(help="bptt or eprop")] = "eprop",
    gain: Annotated[list[float], Opt(help="initial gain of W_h; repeat for several")] = [1.0],  # noqa: B006
    lr: Annotated[list[float], Opt(help="learning rate(s) of the float optimiser")] = [3e-4],  # noqa: B006
    iters: Annotated[int | None, Opt(help="iterations [default: 10000; 2000 in fixed point]")] = None,
    seeds: Annotated[int, Opt(help="networks per configuration, trained as one ensemble")] = 5,
    seed: Annotated[int, Opt(help="first seed")] = 0,
    n_hidden: Annotated[int, Opt(help="hidden units N")] = 64,
    batch: Annotated[int, Opt(help="trials per batch")] = 32,
    optimizer: Annotated[str, Opt(help="adam or sgd (float backend)")] = "adam",
    lr_decay: Annotated[str | None, Opt(help="lr schedule: none or cosine (to 0; in fixed point in "
                                            "powers of two, to 2^-6) [default: cosine; none in fixed "
                                            "point]")] = None,
    feedback: Annotated[str, Opt(help="e-prop feedback: symmetric or random")] = "symmetric",
    dt: Annotated[float, Opt(help="time step (units of tau)")] = 0.5,
    tau: Annotated[float, Opt(help="membrane time constant")] = 1.0,
    bits: Annotated[int | None, Opt(help="fixed point: weight/trace word bits (derives a profile)")] = None,
    profile: Annotated[str | None, Opt(help="fixed point: a named profile or a TOML path")] = None,
    trace_bits: Annotated[int | None, Opt(help="override: trace word bits")] = None,
    state_bits: Annotated[int | None, Opt(help="override: state word bits")] = None,
    rounding: Annotated[str | None, Opt(help="override: weight-update rounding mode")] = None,
    lr_shift: Annotated[int | None, Opt(help="override: learning rate 2^-shift")] = None,
    accumulator: Annotated[str | None, Opt(help="override: after an update the accumulator is "
                                                "cleared (clear) or keeps the remainder (carry)")] = None,
    floss_iters: Annotated[int, Opt(help="gradient-flossing iterations before training (paper: 100)")] = 0,
    floss_k: Annotated[int, Opt(help="Lyapunov exponents flossed")] = 1,
    floss_variant: Annotated[str, Opt(help="flossing gradient: local or bptt")] = "local",
    le_warmup: Annotated[int, Opt(help="steps left out of the Lyapunov average")] = 0,
    log_every: Annotated[int, Opt(help="log the loss every k iterations")] = 10,
    device: Annotated[str, Opt(help="cpu, or cuda for the float backends on a GPU")] = "cpu",
    threads: Annotated[int, Opt(help="torch intra-op threads (more pay off for large ensembles)")] = 1,
    out: Annotated[Path | None, Opt(help="run directory (default runs/<time>-train-...)")] = None,
    force: Annotated[bool, Opt(help="replace a non-empty --out")] = False,
    resume: Annotated[bool, Opt(help="continue a killed run of the same --out from its checkpoint")] = False,
    checkpoint_every: Annotated[int, Opt(help="iterations between checkpoints")] = 200,
) -> None:
    """Train an ensemble; with --bits/--profile, the fixed-point engine beside float SGD."""
    from neurosim.api import run_training
    from neurosim.config import TrainConfig

    overrides = tuple((k, v) for k, v in (("trace_bits", trace_bits), ("state_bits", state_bits),
                      ("rounding", rounding), ("lr_shift", lr_shift), ("accumulator", accumulator))
                      if v is not None)
    config = TrainConfig(
        task=task, rule=rule, gain=tuple(gain) if len(gain) > 1 else gain[0],
        lr=tuple(lr) if len(lr) > 1 else lr[0], iters=iters, seeds=seeds, seed=seed,
        n_hidden=n_hidden, batch=batch, optimizer=optimizer, lr_decay=lr_decay, feedback=feedback,
        dt=dt, tau=tau,
        bits=bits, profile=profile, profile_overrides=overrides, log_every=log_every,
        floss_iters=floss_iters, floss_k=floss_k, floss_variant=floss_variant, le_warmup=le_warmup,
        device=device, threads=threads,
    )
    if resume and out is None:
        raise InputError("--resume needs the --out of the run to continue")
    out = out or _default_out("train", task, rule, f"gain{gain[0]}", *([f"bits{bits}"] if bits else []))
    with progress_bar("training") as advance:
        run_dir, result = run_training(config, out, force=force, resume=resume,
                                       checkpoint_every=checkpoint_every, progress=advance)
    summary_table(result.summary)
    typer.echo(f"run written to {run_dir}")


def main() -> None:
    """Console entry point: one line and exit code 2 for every kind of bad input."""
    warnings.filterwarnings("ignore", module="gymnasium")
    try:
        # standalone_mode=False returns a command's typer.Exit code instead of raising it
        sys.exit(typer.main.get_command(app).main(standalone_mode=False) or 0)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(130)
    except click_exc.NoArgsIsHelpError:  # the help text is already printed
        sys.exit(0)
    except click_exc.UsageError as e:
        _fail(e.format_message())
    except InputError as e:
        _fail(str(e))


def _fail(message: str) -> None:
    typer.echo(f"error: {message.splitlines()[0] if message else 'invalid input'}", err=True)
    sys.exit(2)
