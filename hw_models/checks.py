"""Range checks of the scalar options every command shares (sizes, seeds, gains), so a value a
sweep refuses is refused by ``train`` and ``export-spec`` too, with the same message."""

from __future__ import annotations

import math

from hw_models.errors import InputError

MAX_SEED = 2**62  # seeds (plus the probe stream's offset) stay inside torch's signed 64-bit seed


def check_int(name: str, value, lo: int, hi: int | None = None, *, error=InputError) -> int:
    """``value`` as an integer in ``[lo, hi]``; anything else raises ``error`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise error(f"{name} must be an integer {bound}, got {value!r}")
    return value


def check_seed(name: str, value, count: int = 1, *, error=InputError) -> int:
    """A first seed: ``value .. value + count - 1`` must lie in ``[0, MAX_SEED]``."""
    check_int(name, value, 0, MAX_SEED, error=error)
    if value + count - 1 > MAX_SEED:
        raise error(f"{name} + seeds - 1 must be <= 2^62, got {value} + {count} - 1")
    return value


def check_gain(name: str, value, *, error=InputError) -> float:
    """An initial gain: a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise error(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)
