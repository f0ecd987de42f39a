"""Fixed-point half of neurosim: formats, precision profiles and the bit-exact integer engine.

The public API is the list below. Names load on first use (PEP 562): importing one submodule
(``hw_models.errors``, ``hw_models.profile``) runs no other.
"""

from importlib import import_module

_PUBLIC = {
    "ExactnessError": "_exactness", "FixedPointEngine": "engine",
    **dict.fromkeys(["OVERFLOWS", "ROUNDINGS", "CounterRNG", "QFormat", "SaturationCounter",
                     "apply_overflow", "quantize", "quantize_codes", "requantize", "uniform"], "fixedpoint"),
    **dict.fromkeys(["Formats", "Profile", "ProfileError", "Rounding", "apply_overrides", "derive_profile",
                     "list_profiles", "load_profile"], "profile"),
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'hw_models' has no attribute {name!r}")
    value = getattr(import_module(f"hw_models.{_PUBLIC[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
