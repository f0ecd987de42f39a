"""The fixed-point side of a run: the integer e-prop engine beside float SGD at the same lr.

``--bits N`` derives a profile (:func:`hw_models.profile.derive_profile`), ``--profile NAME``
loads one; overrides apply to either. The float partner is e-prop with plain SGD at
``lr = 2^-lr_shift``, same initial weights, seeds and batches: the gap between the two curves
is precision alone. A ``floss_lr`` (a power of two) is flossing's lr for both: the engine
flosses at shift -log2(floss_lr), float SGD at floss_lr. An lr decay moves both in powers of
two (:func:`neurosim.optim.decay_shift`): the engine's shift grows by k between trials, the
partner's lr falls by 2^-k.
"""

from __future__ import annotations

import dataclasses
import math

from torch import Tensor

from hw_models._exactness import ExactnessError
from hw_models.engine import FixedPointEngine
from hw_models.profile import MAX_LR_SHIFT, Profile, resolve
from neurosim.backends import FloatBackend
from neurosim.config import DEFAULT_LR, ConfigError, TrainConfig
from neurosim.model import Params, alpha_from, init_params
from neurosim.optim import decay_shift


def resolve_profile(config: TrainConfig) -> Profile:
    """The precision profile a config asks for, overrides applied (:func:`hw_models.profile.resolve`)."""
    return resolve(config.bits, config.profile, config.profile_overrides)


def check_fixed_point(config: TrainConfig, n_in: int, n_out: int) -> Profile:
    """What a fixed-point run needs before any work: rule e-prop, a valid profile (overrides
    applied), a leak the alpha format holds, and exactness of the float64 carrier at this N and
    batch — checked on one network per gain (the run checks every network when it builds)."""
    if config.rule != "eprop":
        raise ConfigError("fixed point (bits/profile) trains with rule eprop only")
    profile = resolve_profile(config)
    params = init_params(n_in, config.n_hidden, n_out, list(config.gains), ensemble=len(config.gains),
                         seed=[config.seed] * len(config.gains))
    engine = FixedPointEngine(profile, params, alpha=alpha_from(config.dt, config.tau), seed=config.seed)
    _check_batch(config.batch, engine, profile)
    return profile


def _check_batch(batch: int, engine: FixedPointEngine, profile: Profile) -> None:
    if batch > engine.max_batch:
        raise ExactnessError(f"batch {batch}: profile {profile.name!r} keeps the float64 carrier exact up to "
                             f"batch {engine.max_batch} at N={engine.W['W_h'].shape[-1]}; use --batch "
                             f"{engine.max_batch} or less, or narrower formats")


class FixedBackend:
    """:class:`~hw_models.engine.FixedPointEngine` as a training-loop backend."""

    name = "fixed"

    def __init__(self, profile: Profile, params: Params, *, alpha: float, seeds: list[int],
                 bits: int | None, feedback: Tensor | None = None, lr_decay: str = "none",
                 iters: int = 1, batch: int = 1, floss_shift: int | None = None):
        """``floss_shift``: flossing's own lr 2^-floss_shift (None: the profile's lr_shift)."""
        self.engine = FixedPointEngine(profile, params, alpha=alpha, seed=seeds, feedback=feedback)
        _check_batch(batch, self.engine, profile)
        self.floss_profile = (profile if floss_shift is None
                              else dataclasses.replace(profile, lr_shift=floss_shift))
        self.bits = bits
        self.profile = profile.name
        self.lr_decay, self.iters = lr_decay, iters
        self.step = 0  # training updates made: the lr schedule's clock

    def train_step(self, x, target, mask, frozen=None) -> Tensor:
        shift = self.engine.profile.lr_shift + decay_shift(self.lr_decay, self.step, self.iters)
        self.step += 1
        return self.engine.train_step(x, target, mask, lr_shift=shift).float()

    def floss_step(self, x, *, k: int, variant: str, warmup: int) -> Tensor:
        if k != 1 or variant != "local":
            raise ConfigError("the fixed-point engine flosses with the local k = 1 rule only")
        train_profile, self.engine.profile = self.engine.profile, self.floss_profile  # flossing's shift
        try:
            return self.engine.floss_step(x, warmup=warmup).float()
        finally:
            self.engine.profile = train_profile

    def params(self) -> Params:
        return self.engine.params().map(lambda w: w.float())

    def counters(self) -> dict[str, Tensor]:
        return self.engine.network_counters()

    def network_stats(self) -> dict[str, Tensor]:
        return {f"stall_{k}": v for k, v in self.engine.stall_fraction().items()}

    def lr_label(self, lr: float) -> float:
        return 2.0 ** -self.engine.profile.lr_shift

    def state(self) -> dict:
        return {**self.engine.state(), "step": self.step}

    def load_state(self, state: dict) -> None:
        self.engine.load_state(state)
        self.step = state.get("step", 0)  # checkpoints from before lr decays had no clock


def fixed_backends(config: TrainConfig, params: Params, alpha: float, seeds: list[int],
                   feedback: Tensor | None) -> list:
    """Float e-prop with SGD at 2^-lr_shift (``float-sgd``) and the engine (``fixed``); with
    ``config.adam_reference`` first float e-prop with Adam at DEFAULT_LR (``float-adam``), the
    paper's reference: SGD vs the engine is precision alone, Adam vs SGD the optimiser."""
    if config.rule != "eprop":
        raise ConfigError("fixed point (bits/profile) trains with rule eprop only")
    profile = resolve_profile(config)
    lr = 2.0 ** -profile.lr_shift
    float_sgd = FloatBackend(params, rule="eprop", alpha=alpha, optimizer="sgd",
                             lr=params.W_h.new_full((params.ensemble,), lr), feedback=feedback,
                             name="float-sgd", lr_override=lr, lr_decay=config.lr_decay,
                             iters=config.iters, pow2_decay=True, floss_lr=config.floss_lr)
    floss_shift = None if config.floss_lr is None else -round(math.log2(config.floss_lr))
    if floss_shift is not None and floss_shift > MAX_LR_SHIFT:
        raise ConfigError(f"floss_lr {config.floss_lr:g} needs shift {floss_shift} > {MAX_LR_SHIFT}")
    fixed = FixedBackend(profile, params, alpha=alpha, seeds=seeds, bits=config.bits, feedback=feedback,
                         lr_decay=config.lr_decay, iters=config.iters, batch=config.batch,
                         floss_shift=floss_shift)
    adam = [FloatBackend(params, rule="eprop", alpha=alpha, optimizer="adam",
                         lr=params.W_h.new_full((params.ensemble,), DEFAULT_LR), feedback=feedback,
                         name="float-adam", lr_override=DEFAULT_LR, lr_decay=config.lr_decay,
                         iters=config.iters, floss_lr=config.floss_lr)] if config.adam_reference else []
    return [*adam, float_sgd, fixed]
