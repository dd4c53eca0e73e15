"""Package attributes that import their module on first use (PEP 562).

`tfzoo.export`, `tfzoo.serving` and `tfzoo.training` name their public objects here, so
that e.g. `tfzoo query` loads the client without the server, the models or ScaNN.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_attributes(
    package: str, exports: Mapping[str, str], submodules: Sequence[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(`__getattr__`, `__dir__`) for `package`: `exports` maps a name to the submodule
    that defines it; `submodules` are returned as modules themselves."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(importlib.import_module(package)), *exports, *submodules})

    return __getattr__, __dir__
