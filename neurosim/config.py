"""Run configuration: a frozen dataclass validated on construction.

Every field is checked in ``__post_init__``; a bad value raises :class:`ConfigError` naming the
field and its allowed range, before any work starts. The CLI turns that into exit code 2.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from hw_models.checks import check_gain, check_int, check_seed
from neurosim.errors import InputError
from neurosim.optim import LR_DECAYS, OPTIMIZERS
from neurosim.rules import RULES
from neurosim.tasks import TASKS

FEEDBACKS = ("symmetric", "random")
MAX_NETWORKS = 100_000  # per run (one ensemble); the memory guard usually refuses far fewer
MAX_SIZE = 10**9  # iterations, sizes, windows: beyond it a value is a typo, not a run
MAX_THREADS = 256
DEFAULT_LR = 3e-4  # float runs (Adam); fixed point learns at the profile's 2^-lr_shift
FLOSS_VARIANTS = ("local", "bptt")


class ConfigError(InputError):
    """A configuration value is out of its allowed range; the message names the field."""


def _as_tuple(v) -> tuple:
    return tuple(v) if isinstance(v, list | tuple) else (v,)


@dataclass(frozen=True)
class TrainConfig:
    """Everything one run needs. ``gain`` and ``lr`` may be tuples: the ensemble is
    gains × lrs × seeds networks (seeds ``seed .. seed+seeds-1``).

    ``iters`` and ``lr_decay`` left at ``None`` resolve on construction: a float run trains
    10000 iterations with a cosine lr decay (e-prop needs both to leave Romo's 0.033 plateau
    and keep what it found; measured in experiments/README.md), a fixed-point run 2000
    iterations at its constant ``2^-lr_shift`` (the integer engine is several times slower per
    iteration). A fixed-point run with ``lr_decay = "cosine"`` follows the cosine in powers of
    two: the engine's shift grows by :func:`~neurosim.optim.decay_shift`, and its float SGD
    partner's lr falls by the same factors.

    Flossing: ``floss_iters`` pretraining updates, then, with ``floss_every = k > 0``, one more
    flossing update after every k-th training iteration (interleaved, as Engelken's code also
    flosses during training). ``floss_lr`` is flossing's own constant learning rate (``None``:
    each network's task lr, the original behaviour); a fixed-point run needs a power of two
    (the engine's shift) and uses it for the engine and its float SGD partner alike.

    ``dt = tau`` (α = 0) is refused: every run measures Lyapunov exponents, which α = 0 leaves
    undefined (:func:`neurosim.lyapunov.check_alpha`).
    """

    task: str = "romo"
    rule: str = "eprop"
    gain: float | tuple[float, ...] = 1.0
    lr: float | tuple[float, ...] | None = None
    seeds: int = 5
    seed: int = 0
    n_hidden: int = 64
    batch: int = 32
    iters: int | None = None
    optimizer: str | None = None
    lr_decay: str | None = None
    feedback: str = "symmetric"
    dt: float = 0.5
    tau: float = 1.0
    log_every: int = 10
    final_window: int = 50
    bits: int | None = None
    profile: str | None = None
    profile_overrides: tuple[tuple[str, object], ...] = ()
    floss_iters: int = 0
    floss_k: int = 1
    floss_variant: str = "local"
    floss_lr: float | None = None
    floss_every: int = 0
    le_warmup: int = 0
    threads: int = 1
    device: str = "cpu"
    adam_reference: bool = False  # fixed point: also train float Adam at DEFAULT_LR (the paper's)

    def __post_init__(self):
        if self.iters is None:
            object.__setattr__(self, "iters", 2000 if self.fixed_point else 10000)
        if self.lr_decay is None:
            object.__setattr__(self, "lr_decay", "none" if self.fixed_point else "cosine")
        if self.optimizer is None:
            object.__setattr__(self, "optimizer", "sgd" if self.fixed_point else "adam")
        if self.lr in (None, (None,), [None]):
            object.__setattr__(self, "lr", None if self.fixed_point else DEFAULT_LR)
        elif self.fixed_point:
            self._lr_as_shift()
        _choice("task", self.task, TASKS)
        _choice("rule", self.rule, RULES)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("lr_decay", self.lr_decay, LR_DECAYS)
        _choice("feedback", self.feedback, FEEDBACKS)
        _choice("floss_variant", self.floss_variant, FLOSS_VARIANTS)
        for name in ("seeds", "n_hidden", "batch", "iters", "log_every", "final_window", "floss_k"):
            check_int(name, getattr(self, name), 1, MAX_SIZE, error=ConfigError)
        check_int("threads", self.threads, 1, MAX_THREADS, error=ConfigError)
        check_int("floss_iters", self.floss_iters, 0, MAX_SIZE, error=ConfigError)
        check_int("le_warmup", self.le_warmup, 0, MAX_SIZE, error=ConfigError)
        check_seed("seed", self.seed, self.seeds, error=ConfigError)
        for name in ("gain", "lr"):  # lists (from JSON/TOML) become tuples: the config stays hashable
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        for g in self.gains:
            check_gain("gain", g, error=ConfigError)
        if self.networks > MAX_NETWORKS:
            raise ConfigError(f"{self.networks} networks (gains x lrs x seeds) in one run; at most "
                              f"{MAX_NETWORKS}")
        for lr in self.lrs if self.lr is not None else ():
            if not _is_number(lr) or not 0 < lr < 10:
                raise ConfigError(f"lr must be a number in (0, 10), got {lr!r}")
        if not (_is_number(self.dt) and _is_number(self.tau) and 0 < self.dt <= self.tau):
            raise ConfigError(f"dt and tau must satisfy 0 < dt <= tau, got dt={self.dt}, tau={self.tau}")
        if self.dt == self.tau:
            raise ConfigError(f"dt = tau ({self.dt}) gives alpha = 0: the first Jacobian is zero and the "
                              "Lyapunov exponents every run measures are undefined; use dt < tau")
        if self.floss_lr is not None and (not _is_number(self.floss_lr) or not 0 < self.floss_lr < 10):
            raise ConfigError(f"floss_lr must be a number in (0, 10) or None, got {self.floss_lr!r}")
        if self.floss_lr is not None and self.fixed_point and math.log2(self.floss_lr) % 1:
            raise ConfigError(f"floss_lr must be a power of two for fixed point (an engine shift), "
                              f"got {self.floss_lr!r}")
        every = self.floss_every
        if not isinstance(every, int) or isinstance(every, bool) or every < 0:
            raise ConfigError(f"floss_every must be an integer >= 0, got {self.floss_every!r}")
        if self.bits is not None and self.profile is not None:
            raise ConfigError("give either bits or profile, not both")
        if self.bits is not None and (not isinstance(self.bits, int) or not 2 <= self.bits <= 32):
            raise ConfigError(f"bits must be an integer in [2, 32], got {self.bits!r}")
        if self.fixed_point and self.optimizer != "sgd":
            raise ConfigError(f"optimizer {self.optimizer}: a fixed-point run trains the engine and its "
                              "float partner with SGD at 2^-lr_shift (the chip's optimiser); --optimizer "
                              "is for float runs")
        if not isinstance(self.adam_reference, bool):
            raise ConfigError(f"adam_reference must be true or false, got {self.adam_reference!r}")
        if self.adam_reference and not self.fixed_point:
            raise ConfigError("adam_reference is a float Adam run beside a fixed-point one: it needs bits "
                              "or profile")
        if self.profile_overrides and not self.fixed_point:
            raise ConfigError("precision overrides need bits or profile")
        if self.device not in ("cpu", "cuda"):
            raise ConfigError(f"device must be cpu or cuda, got {self.device!r}")
        if self.device == "cuda" and self.fixed_point:
            raise ConfigError("device cuda runs the float backends; the fixed-point engine runs on cpu")
        if self.floss_k > self.n_hidden:
            raise ConfigError(f"floss_k must be <= n_hidden ({self.n_hidden}), got {self.floss_k}")

    def _lr_as_shift(self) -> None:
        """A fixed-point run learns at a power of two: ``lr`` becomes the nearest shift
        ``k = round(-log2 lr)`` (an ``lr_shift`` override), both backends train at 2^-k, and
        ``lr`` records 2^-k. An explicit ``lr_shift`` that disagrees is refused."""
        lrs = _as_tuple(self.lr)
        if len(lrs) > 1:
            raise ConfigError("lr: fixed point learns at one 2^-lr_shift per run; sweep lr_shift, not lr")
        lr = lrs[0]
        if not _is_number(lr) or not 0 < lr < 10:
            raise ConfigError(f"lr must be a number in (0, 10), got {lr!r}")
        k = round(-math.log2(lr))
        given = dict(self.profile_overrides).get("lr_shift")
        if given is not None and given != k:
            raise ConfigError(f"lr {lr:g} is 2^-{k} in fixed point, but lr_shift = {given} was given too; "
                              "give one of them")
        if given is None:
            object.__setattr__(self, "profile_overrides",
                               tuple(sorted((*self.profile_overrides, ("lr_shift", k)))))
        object.__setattr__(self, "lr", 2.0 ** -k)

    @property
    def gains(self) -> tuple[float, ...]:
        return _as_tuple(self.gain)

    @property
    def lrs(self) -> tuple[float | None, ...]:
        """The float lrs; ``(None,)`` in fixed point without ``lr`` (the profile's 2^-lr_shift)."""
        return _as_tuple(self.lr)

    @property
    def networks(self) -> int:
        """Networks in the ensemble: gains × lrs × seeds."""
        return len(self.gains) * len(self.lrs) * self.seeds

    @property
    def fixed_point(self) -> bool:
        return self.bits is not None or self.profile is not None

    @property
    def floss_label(self) -> str:
        """``off``, ``local100``, then ``@lr`` for an own flossing lr and ``+every10`` for
        interleaved flossing: ``local100@0.01+every10``."""
        if not self.floss_iters and not self.floss_every:
            return "off"
        label = f"{self.floss_variant}{self.floss_iters}"
        label += f"@{self.floss_lr:g}" if self.floss_lr is not None else ""
        return label + (f"+every{self.floss_every}" if self.floss_every else "")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
        d = dict(d)
        if "profile_overrides" in d:
            d["profile_overrides"] = tuple(tuple(kv) for kv in d["profile_overrides"])
        return cls(**d)


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")

