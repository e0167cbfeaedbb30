"""A package's names loaded from their modules on first use (PEP 562), so that importing the package,
or running its `__main__` for `--help`, does not load JAX and the game."""

from __future__ import annotations

import importlib


def lazy_exports(package: str, homes: dict[str, str]):
    """`(__getattr__, __dir__)` for `package`: each name of `homes` (name -> submodule) is imported from
    `package.<submodule>` the first time it is read, then kept in the package's namespace."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str):
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{homes[name]}"), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(homes))

    return __getattr__, __dir__
