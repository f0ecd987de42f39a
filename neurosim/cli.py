"""Command line: typer options → a config → one call of the Python API → a report.

Bad input of any kind (an option out of range, an unknown name, an unusable output path, a
malformed profile) is answered with one line ``error: ...`` on stderr and exit code 2.
"""

from __future__ import annotations

import os
import shlex
import sys
import warnings
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from typer._click import exceptions as click_exc  # typer vendors click; no public alias

from neurosim.cli_claims import claims
from neurosim.cli_lyapunov import lyapunov
from neurosim.cli_profiles import profiles_app
from neurosim.cli_spec import cost, export_spec, verify_spec
from neurosim.cli_sweep import plot, reproduce, sweep
from neurosim.errors import InputError, Interrupted
from neurosim.report import gap_lines, progress_bar, summary_table

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,  # help texts are plain: "[default: ...]" is not a style tag
                  help="neurosim: initial gain, gradient flossing and e-prop, in float and fixed point.")

app.add_typer(profiles_app, name="profiles")
for command in (lyapunov, sweep, plot, reproduce, cost, claims):
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
    lr: Annotated[list[float] | None, Opt(help="learning rate(s) [default: 3e-4; in fixed point the "
                                               "profile's 2^-lr_shift; a given lr becomes the nearest "
                                               "power of two for both backends]")] = None,
    iters: Annotated[int | None, Opt(help="iterations [default: 10000; 2000 in fixed point]")] = None,
    seeds: Annotated[int, Opt(help="networks per configuration, trained as one ensemble")] = 5,
    seed: Annotated[int, Opt(help="first seed")] = 0,
    n_hidden: Annotated[int, Opt(help="hidden units N")] = 64,
    batch: Annotated[int, Opt(help="trials per batch")] = 32,
    optimizer: Annotated[str | None, Opt(help="adam or sgd [default: adam; fixed point: sgd, the only "
                                              "one it runs]")] = None,
    lr_decay: Annotated[str | None, Opt(help="lr schedule: none or cosine (to 0; in fixed point in "
                                            "powers of two, to 2^-6) [default: cosine; none in fixed "
                                            "point]")] = None,
    feedback: Annotated[str, Opt(help="e-prop feedback: symmetric or random")] = "symmetric",
    dt: Annotated[float, Opt(help="time step (units of tau)")] = 0.5,
    tau: Annotated[float, Opt(help="membrane time constant")] = 1.0,
    bits: Annotated[int | None, Opt(help="fixed point: weight/trace word bits (derives a profile) "
                                           "[default: none: float only, unless --profile]")] = None,
    profile: Annotated[str | None, Opt(help="fixed point: a named profile or a TOML path "
                                              "[default: none: float only, unless --bits]")] = None,
    trace_bits: Annotated[int | None, Opt(help="override: trace word bits [default: the profile's]")] = None,
    state_bits: Annotated[int | None, Opt(help="override: state word bits [default: the profile's]")] = None,
    rounding: Annotated[str | None, Opt(help="override: weight-update rounding mode "
                                             "[default: the profile's]")] = None,
    lr_shift: Annotated[int | None, Opt(help="override: learning rate 2^-shift "
                                             "[default: the profile's]")] = None,
    accumulator: Annotated[str | None, Opt(help="override: after an update the accumulator is "
                                                "cleared (clear) or keeps the remainder (carry) "
                                                "[default: the profile's]")] = None,
    floss_iters: Annotated[int, Opt(help="gradient-flossing iterations before training (paper: 100)")] = 0,
    floss_k: Annotated[int, Opt(help="Lyapunov exponents flossed")] = 1,
    floss_variant: Annotated[str, Opt(help="flossing gradient: local or bptt")] = "local",
    floss_lr: Annotated[float | None, Opt(help="flossing's own constant lr [default: the task lr]; "
                                          "fixed point: a power of two")] = None,
    floss_every: Annotated[int, Opt(help="also floss once after every k-th training iteration (0: off)")] = 0,
    le_warmup: Annotated[int, Opt(help="steps left out of the Lyapunov average")] = 0,
    log_every: Annotated[int, Opt(help="log the loss every k iterations")] = 10,
    device: Annotated[str, Opt(help="cpu, or cuda for the float backends on a GPU")] = "cpu",
    adam_reference: Annotated[bool, Opt("--adam-reference/--no-adam-reference",
                                        help="fixed point: also train float e-prop with Adam at lr 3e-4, "
                                             "the paper's reference")] = True,
    threads: Annotated[int, Opt(help="torch intra-op threads (more pay off for large ensembles)")] = 1,
    out: Annotated[Path | None, Opt(help="run directory [default: runs/<time>-train-...]")] = None,
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
        lr=None if not lr else tuple(lr) if len(lr) > 1 else lr[0], iters=iters, seeds=seeds, seed=seed,
        n_hidden=n_hidden, batch=batch, optimizer=optimizer, lr_decay=lr_decay, feedback=feedback,
        dt=dt, tau=tau,
        bits=bits, profile=profile, profile_overrides=overrides, log_every=log_every,
        floss_iters=floss_iters, floss_k=floss_k, floss_variant=floss_variant, floss_lr=floss_lr,
        floss_every=floss_every, le_warmup=le_warmup,
        device=device, threads=threads,
        adam_reference=adam_reference and (bits is not None or profile is not None),
    )
    if resume and out is None:
        raise InputError("--resume needs the --out of the run to continue")
    out = out or _default_out("train", task, rule, f"gain{gain[0]}", *([f"bits{bits}"] if bits else []))
    try:
        with progress_bar("iteration", log_lines=True) as advance:
            run_dir, result = run_training(config, out, force=force, resume=resume,
                                           checkpoint_every=checkpoint_every, progress=advance)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; finished iterations are checkpointed: resume with "
                          f"{resume_command(out)}") from None
    if result.resumed_from:
        typer.echo(f"resumed from the checkpoint at iteration {result.resumed_from} of "
                   f"{config.floss_iters + config.iters}")
    summary_table(result.summary, result.profile)
    for line in gap_lines(result.summary):
        typer.echo(line)
    typer.echo(f"run written to {run_dir}")


def resume_command(out: Path) -> str:
    """The command line of this process, with ``--out OUT --resume``, for the user to paste."""
    args = [a for a in sys.argv[1:] if a not in ("--resume", "--force")]
    if "--out" not in args and not any(a.startswith("--out=") for a in args):
        args += ["--out", str(out)]
    return shlex.join(["neurosim", *args, "--resume"])


def main() -> None:
    """Console entry point. The exit code is the command's: 0 success; 2 bad input (one line
    ``error: ...``, nothing written); 1 a failure during work (failed cells, I/O, disk full, an
    internal error: one line); 130 Ctrl-C, with a line on how to resume. No traceback, unless
    ``NEUROSIM_DEBUG=1``."""
    warnings.filterwarnings("ignore", module="gymnasium")
    try:
        code = typer.main.get_command(app).main(standalone_mode=False)
    except typer.Exit as e:
        code = e.exit_code
    except click_exc.NoArgsIsHelpError:  # the help text is already printed
        code = 0
    except click_exc.UsageError as e:
        code = _fail(e.format_message(), 2)
    except InputError as e:
        code = _fail(str(e), 2)
    except Interrupted as e:
        typer.echo(str(e), err=True)
        code = 130
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        code = 130
    except MemoryError:
        code = _fail("out of memory during work; use a smaller ensemble, batch or network", 1)
    except OSError as e:
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        code = _fail(f"{e.strerror or e}{where}", 1)
    except Exception as e:  # noqa: BLE001 — a bug: one line, the traceback on request
        if os.environ.get("NEUROSIM_DEBUG"):
            raise
        code = _fail(f"internal error: {type(e).__name__}: {e} (NEUROSIM_DEBUG=1 shows the traceback)", 1)
    sys.exit(code or 0)


def _fail(message: str, code: int) -> int:
    first = message.strip().splitlines()[0] if message.strip() else "invalid input"
    typer.echo(f"error: {first}", err=True)
    return code
