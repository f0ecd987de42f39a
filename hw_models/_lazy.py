"""Package faces that load their public names on first use (PEP 562), so importing a package
(or one of its submodules) runs none of its other modules."""

from __future__ import annotations

from importlib import import_module


def lazy_face(package: str, public: dict[str, str], namespace: dict):
    """``(__getattr__, __dir__)`` for ``package`` whose names ``public`` maps to the submodule
    that defines each; a name, once loaded, is kept in ``namespace`` (the package's globals)."""

    def __getattr__(name: str):
        if name not in public:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{public[name]}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *public])

    return __getattr__, __dir__
