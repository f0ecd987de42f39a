"""Fixed-point half of neurosim: formats, precision profiles and the bit-exact integer engine.

The public API is the list below. Names load on first use (PEP 562): importing one submodule
(``hw_models.errors``, ``hw_models.profile``) runs no other.
"""

from hw_models._lazy import lazy_face

_PUBLIC = {
    "ExactnessError": "_exactness", "FixedPointEngine": "engine",
    **dict.fromkeys(["OVERFLOWS", "ROUNDINGS", "CounterRNG", "QFormat", "SaturationCounter",
                     "apply_overflow", "quantize", "quantize_codes", "requantize", "uniform"], "fixedpoint"),
    **dict.fromkeys(["Formats", "Profile", "ProfileError", "Rounding", "apply_overrides", "derive_profile",
                     "list_profiles", "load_profile"], "profile"),
}
__all__ = sorted(_PUBLIC)


__getattr__, __dir__ = lazy_face("hw_models", _PUBLIC, globals())
