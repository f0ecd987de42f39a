"""Fixed-point half of neurosim: formats, precision profiles and the bit-exact integer engine."""

from hw_models._exactness import ExactnessError
from hw_models.engine import FixedPointEngine
from hw_models.fixedpoint import (
    OVERFLOWS,
    ROUNDINGS,
    CounterRNG,
    QFormat,
    SaturationCounter,
    apply_overflow,
    quantize,
    quantize_codes,
    requantize,
    uniform,
)
from hw_models.profile import (
    Formats,
    Profile,
    ProfileError,
    Rounding,
    apply_overrides,
    derive_profile,
    list_profiles,
    load_profile,
)

__all__ = [
    "OVERFLOWS",
    "ROUNDINGS",
    "CounterRNG",
    "ExactnessError",
    "FixedPointEngine",
    "Formats",
    "Profile",
    "ProfileError",
    "QFormat",
    "Rounding",
    "SaturationCounter",
    "apply_overflow",
    "apply_overrides",
    "derive_profile",
    "list_profiles",
    "load_profile",
    "quantize",
    "quantize_codes",
    "requantize",
    "uniform",
]
