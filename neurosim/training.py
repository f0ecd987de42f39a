"""One training loop for every backend (float rules, fixed-point engine).

:func:`train` builds the ensemble described by a :class:`TrainConfig` (gains × lrs × seeds, one
network each), draws each seed's batches once, and steps every backend on the same batches:
first ``floss_iters`` gradient-flossing iterations (phase ``floss``), then ``iters`` task
iterations (phase ``train``), with ``floss_every = k`` one flossing update on the same batch
after every k-th of them. The maximum Lyapunov exponent of every network is measured on a
fixed probe batch before and after, twice: at ``le_warmup`` (``le_before``/``le_after``) and
with the task's transient excluded (``le_before_tr``/``le_after_tr``, warm-up
``task.transient_steps``: the steps whose Jacobian is taken at h = 0, e.g. Romo's fixation).
A network whose probe trajectory is not finite has NaN exponents by rule
(:mod:`neurosim.lyapunov`) and ``le_after_finite`` False. It returns a :class:`RunResult`
with tidy learning curves and a per-network summary; it does not print, and touches files
only through an optional checkpoint that lets a killed run resume bit for bit.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor

from neurosim.backends import Backend, FloatBackend, random_feedback
from neurosim.config import ConfigError, TrainConfig
from neurosim.errors import InputError
from neurosim.fixed_backend import fixed_backends
from neurosim.lyapunov import finite_trajectory, max_lyapunov
from neurosim.model import Params, alpha_from, init_params
from neurosim.outputs import atomic_write
from neurosim.resources import check_run
from neurosim.results import refuse_profile_change
from neurosim.tasks import BatchStream, get_task

Progress = Callable[[int, int, dict[str, float]], None]  # (done, total, latest loss per backend)
PROBE_SEED_OFFSET = 7_919  # the probe batch's stream is apart from the training stream
EXPLODED = 1e3  # a loss this many times the network's first loss counts as diverged


@dataclass(frozen=True)
class Member:
    """One network of the ensemble."""

    gain: float
    lr: float
    seed: int


@dataclass
class RunResult:
    """What a run produced: config, tidy curve rows, one summary row per network × backend."""

    config: TrainConfig
    curves: list[dict]
    summary: list[dict]
    params: dict[str, Params] = field(default_factory=dict)
    profile: dict | None = None  # the full precision profile a fixed-point run used
    ran: dict = field(default_factory=dict)  # per backend: the optimiser and lr(s) it trained with
    resumed_from: int = 0  # iterations a checkpoint already held when this call started


def members(config: TrainConfig) -> list[Member]:
    """The ensemble in a fixed order: gain-major, then lr, then seed."""
    return [
        Member(g, lr, config.seed + s)
        for g in config.gains
        for lr in config.lrs
        for s in range(config.seeds)
    ]


class _Tracker:
    """Per-network divergence flags and the losses of the last ``window`` iterations.

    A network has diverged when its loss is not finite or exceeds :data:`EXPLODED` times its
    first loss (an exploding network can stay finite for thousands of iterations, and one loss
    of 10^5 would otherwise decide which lr looks best). It is frozen from then on.
    """

    def __init__(self, E: int, window: int):
        self.diverged = torch.zeros(E, dtype=torch.bool)
        self.diverged_at: list[int | None] = [None] * E
        self.window = window
        self.recent: list[Tensor] = []
        self.first: Tensor | None = None

    def update(self, it: int, loss: Tensor) -> None:
        loss = loss.detach().cpu()
        if self.first is None:
            self.first = loss.double()
        bad = ~(torch.isfinite(loss) & (loss <= EXPLODED * self.first)) & ~self.diverged
        for e in bad.nonzero().flatten().tolist():
            self.diverged_at[e] = it
        self.diverged |= bad
        self.recent = (self.recent + [loss.double()])[-self.window:]

    def final_loss(self) -> Tensor:
        return torch.stack(self.recent).mean(0)

    def latest_loss(self) -> float | None:
        """Mean loss of the last task iteration over the networks not diverged (None before
        the first one, or when all diverged); read only, for progress lines."""
        kept = self.recent[-1][~self.diverged] if self.recent else self.diverged[:0]
        return float(kept.mean()) if kept.numel() else None


class _Run:
    """The mutable state of one run: everything a checkpoint must hold to resume exactly."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.task = get_task(config.task, dt=config.dt / config.tau)
        check_run(config, memory=True)
        self.alpha = alpha_from(config.dt, config.tau)
        self.ens = members(config)
        seeds = sorted({m.seed for m in self.ens})
        self.seed_index = torch.tensor([seeds.index(m.seed) for m in self.ens])
        self.stream = BatchStream(self.task, config.batch, seeds)
        probe = BatchStream(self.task, config.batch, [s + PROBE_SEED_OFFSET for s in seeds]).next()
        self.device = _device(config.device)
        self.probe_x = probe[0][:, self.seed_index].to(self.device)
        seeds_e = [m.seed for m in self.ens]
        params = init_params(
            self.task.n_in, config.n_hidden, self.task.n_out,
            [m.gain for m in self.ens], ensemble=len(self.ens), seed=seeds_e,
        ).map(lambda w: w.to(self.device))
        lr = None if config.fixed_point else torch.tensor([m.lr for m in self.ens], device=self.device)
        self.backends: list[Backend] = make_backends(config, params, self.alpha, lr, seeds_e)
        self.profile = next((b.engine.profile.to_dict() for b in self.backends if hasattr(b, "engine")), None)
        self.trackers = {b.name: _Tracker(len(self.ens), config.final_window) for b in self.backends}
        self.le_before = {b.name: self.max_le(b) for b in self.backends}
        self.le_before_tr = {b.name: self.max_le(b, self.transient) for b in self.backends}
        self.curves: list[dict] = []
        self.done = 0  # finished iterations, flossing and training together

    @property
    def total(self) -> int:
        return self.config.floss_iters + self.config.iters

    @property
    def transient(self) -> int:
        return min(self.task.transient_steps, self.probe_x.shape[0] - 1)

    def max_le(self, backend: Backend, warmup: int | None = None) -> Tensor:
        warmup = self.config.le_warmup if warmup is None else warmup
        return max_lyapunov(backend.params(), self.probe_x, alpha=self.alpha, warmup=warmup)

    def iteration(self) -> None:
        """One flossing or training iteration of every backend on one batch."""
        cfg, s = self.config, self.done
        x, target, mask = (a[:, self.seed_index].to(self.device) for a in self.stream.next())
        flossing = s < cfg.floss_iters
        it = s if flossing else s - cfg.floss_iters
        last = cfg.floss_iters - 1 if flossing else cfg.iters - 1
        for b in self.backends:
            if flossing:
                loss = b.floss_step(x, k=cfg.floss_k, variant=cfg.floss_variant, warmup=cfg.le_warmup)
            else:
                loss = b.train_step(x, target, mask, frozen=self.trackers[b.name].diverged)
                self.trackers[b.name].update(it, loss)
                if cfg.floss_every and (it + 1) % cfg.floss_every == 0:
                    b.floss_step(x, k=cfg.floss_k, variant=cfg.floss_variant, warmup=cfg.le_warmup)
            if it % cfg.log_every == 0 or it == last:
                self.curves += self._rows(b, "floss" if flossing else "train", it, loss)
        self.done += 1

    def _rows(self, backend: Backend, phase: str, it: int, loss: Tensor) -> list[dict]:
        tr = self.trackers[backend.name]
        return [
            {**_labels(self.config, m, backend), "phase": phase, "iteration": it, "loss": float(loss[e])}
            for e, m in enumerate(self.ens)
            if phase == "floss" or not tr.diverged[e] or tr.diverged_at[e] == it
        ]

    def result(self) -> RunResult:
        summary = []
        for b in self.backends:
            tr, counters, stats = self.trackers[b.name], b.counters(), b.network_stats()
            le_after, final = self.max_le(b), tr.final_loss()
            le_after_tr = self.max_le(b, self.transient)
            finite = finite_trajectory(b.params(), self.probe_x, alpha=self.alpha)
            for e, m in enumerate(self.ens):
                summary.append({
                    **_labels(self.config, m, b),
                    "initial_loss": float(tr.first[e]),
                    "final_loss": float("nan") if tr.diverged[e] else float(final[e]),
                    "diverged": bool(tr.diverged[e]),
                    "diverged_at": tr.diverged_at[e],
                    "le_before": float(self.le_before[b.name][e]),
                    "le_after": float(le_after[e]),
                    "le_before_tr": float(self.le_before_tr[b.name][e]),
                    "le_after_tr": float(le_after_tr[e]),
                    "le_warmup_tr": self.transient,
                    "le_after_finite": bool(finite[e]),
                    **{f"sat_{k}": int(v[e]) for k, v in counters.items()},
                    **{k: float(v[e]) for k, v in stats.items()},
                })
        return RunResult(self.config, self.curves, summary, {b.name: b.params() for b in self.backends},
                         self.profile, self.ran())

    def ran(self) -> dict:
        """What each backend trained with, as config.json records it (not the request)."""
        out = {}
        for b in self.backends:
            lrs = sorted({b.lr_label(m.lr) for m in self.ens})
            optimizer = getattr(getattr(b, "optimizer", None), "kind", self.config.optimizer)
            out[b.name] = {"optimizer": optimizer, "lr": lrs[0] if len(lrs) == 1 else lrs,
                           "lr_decay": self.config.lr_decay}
            if self.profile is not None and b.name != "float-adam":
                out[b.name]["lr_shift"] = self.profile["lr_shift"]
        return out

    def state(self) -> dict:
        return {
            "config": self.config.to_dict(), "profile": self.profile, "done": self.done,
            "curves": self.curves,
            "stream": self.stream.state(), "backends": {b.name: b.state() for b in self.backends},
            "trackers": {k: vars(t) for k, t in self.trackers.items()},
        }

    def load_state(self, state: dict, where: Path) -> None:
        """Continue from a checkpoint ``state`` (read from ``where``): refused when it belongs to
        another configuration or profile, or is damaged."""
        if _plain(state["config"]) != _plain(self.config.to_dict()):
            raise ConfigError(f"the checkpoint {where} belongs to a different configuration; "
                              "rerun without --resume")
        refuse_profile_change(state.get("profile"), self.profile, f"the checkpoint {where}",
                              "rerun without --resume")
        try:
            self.done, self.curves = int(state["done"]), list(state["curves"])
            if not 0 <= self.done <= self.total:
                raise ValueError(f"iteration {self.done} outside 0..{self.total}")
            self.stream.load_state(state["stream"])
            for b in self.backends:
                b.load_state(state["backends"][b.name])
            for k, t in self.trackers.items():
                vars(t).update(state["trackers"][k])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as err:
            raise CheckpointError(f"checkpoint {where} is damaged ({type(err).__name__}: {err}); "
                                  "delete it or rerun without --resume") from None


class CheckpointError(InputError):
    """A checkpoint cannot be read or does not hold a run's state."""


def load_checkpoint(path: Path) -> dict:
    """The state saved at ``path`` (tensors and plain data only: ``weights_only``, so a foreign
    pickle cannot run code); a truncated, foreign or garbage file is a :class:`CheckpointError`."""
    try:
        with torch.serialization.safe_globals([Params]):
            state = torch.load(path, weights_only=True)
    except Exception as err:  # noqa: BLE001 — torch raises many kinds for a damaged file
        raise CheckpointError(f"checkpoint {path} is damaged or not a neurosim checkpoint "
                              f"({type(err).__name__}); delete it or rerun without --resume") from None
    if not isinstance(state, dict) or not {"config", "done", "curves", "stream", "backends",
                                           "trackers"} <= state.keys():
        raise CheckpointError(f"checkpoint {path} does not hold a neurosim run's state; delete it or "
                              "rerun without --resume")
    return state


def _plain(d: dict) -> dict:
    """A config dict in JSON's terms (tuples as lists), for comparison."""
    try:
        return json.loads(json.dumps(d))
    except (TypeError, ValueError):
        return {"unreadable": repr(d)}


def make_backends(config: TrainConfig, params: Params, alpha: float, lr: Tensor | None,
                  seeds: list[int]) -> list[Backend]:
    """The backends of a run: the float rule alone, or float SGD beside the fixed-point engine."""
    feedback = None
    if config.feedback == "random":
        feedback = random_feedback(seeds, params.n_hidden, params.W_out.shape[1]).to(params.W_h.device)
    if not config.fixed_point:
        return [FloatBackend(params, rule=config.rule, alpha=alpha, optimizer=config.optimizer,
                             lr=lr, feedback=feedback, lr_decay=config.lr_decay, iters=config.iters,
                             floss_lr=config.floss_lr)]
    return fixed_backends(config, params, alpha, seeds, feedback)


def _device(name: str) -> torch.device:
    """The torch device of a config; ``cuda`` without a GPU is bad input, not a crash."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda requested but torch sees no GPU")
    return torch.device(name)


def _labels(config: TrainConfig, m: Member, backend: Backend) -> dict:
    return {
        "backend": backend.name, "rule": config.rule, "task": config.task, "gain": m.gain,
        "bits": backend.bits, "profile": backend.profile, "flossing": config.floss_label,
        "lr": backend.lr_label(m.lr), "seed": m.seed,
    }


def initial_max_le(config: TrainConfig) -> list[dict]:
    """Max Lyapunov exponent of the freshly initialised networks of ``config``, one row each
    (``backend, gain, lr, seed, le_before``), on the same probe batch training would use."""
    run = _Run(config)
    return [
        {**_labels(config, m, b), "le_before": float(run.le_before[b.name][e])}
        for b in run.backends for e, m in enumerate(run.ens)
    ]


def run_max_le(config: TrainConfig, trained: dict[str, Params], warmup: int) -> list[dict]:
    """Max LE of a finished run recomputed at another ``warmup``: one row per network and
    backend (``le_before`` of the re-initialised networks, ``le_after`` of ``trained``, the
    run's stored params by backend name), on the probe batch the run used."""
    run = _Run(replace(config, le_warmup=warmup))
    rows = []
    for b in run.backends:
        if b.name not in trained:
            raise ConfigError(f"the stored params have no backend {b.name!r}")
        after = max_lyapunov(trained[b.name].map(lambda w: w.to(run.device)), run.probe_x,
                             alpha=run.alpha, warmup=warmup)
        rows += [{**_labels(config, m, b), "le_before": float(run.le_before[b.name][e]),
                  "le_after": float(after[e])} for e, m in enumerate(run.ens)]
    return rows


def train(
    config: TrainConfig,
    progress: Progress | None = None,
    *,
    checkpoint: Path | None = None,
    checkpoint_every: int = 200,
) -> RunResult:
    """Train the ensemble of ``config`` with every backend it names; see module docstring.

    ``progress(done, total, loss)`` is called after every iteration (flossing ones included)
    with, per backend name, the mean loss of its latest task iteration over the networks not
    diverged (empty while flossing). With ``checkpoint``, the run state is saved there
    (atomically) every ``checkpoint_every`` iterations, and a run that finds a checkpoint
    continues from it: a killed run resumed this way ends bit for bit as an uninterrupted one.
    """
    if not isinstance(checkpoint_every, int) or checkpoint_every <= 0:
        raise ConfigError(f"checkpoint_every must be a positive integer, got {checkpoint_every}")
    with torch_threads(config.threads):
        run = _Run(config)
        if checkpoint is not None and Path(checkpoint).exists():
            run.load_state(load_checkpoint(checkpoint), checkpoint)
        resumed_from = run.done

        def save() -> None:
            state = run.state()
            atomic_write(checkpoint, lambda fh: torch.save(state, fh), binary=True)

        with deferred_interrupt() as interrupted:
            while run.done < run.total:
                run.iteration()
                if progress:
                    latest = {k: t.latest_loss() for k, t in run.trackers.items()}
                    progress(run.done, run.total, {k: v for k, v in latest.items() if v is not None})
                if checkpoint is not None and run.done < run.total and (
                        run.done % checkpoint_every == 0 or interrupted()):
                    save()
                if interrupted():
                    raise KeyboardInterrupt
        result = run.result()
        result.resumed_from = resumed_from
        return result


@contextmanager
def deferred_interrupt():
    """Turn the first Ctrl-C (SIGINT) into a flag the loop reads between iterations, so the run
    stops at a whole iteration and its checkpoint is consistent; a second Ctrl-C interrupts at
    once. Yields ``interrupted() -> bool``. Outside the main thread it changes nothing."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None)):
        yield lambda: False
        return
    hit = []

    def handler(signum, frame):
        hit.append(signum)
        signal.signal(signal.SIGINT, previous)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(hit)
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def torch_threads(n: int):
    """Run a block with ``n`` intra-op threads. The default of one is deliberate: the
    per-step tensors are small and a second thread slows small ``bmm``s down (measured in
    ``experiments/README.md``); parallelism comes from the ensemble axis and, in sweeps, from
    one process per core."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
