"""The CMS registry: one module per CMS in this package, found by name.

Each module defines ``CMS``, an instance of a ``chalicelib.hooks.base.Cms``
subclass holding that CMS's verification, mapping and image rules. Adding a CMS
is adding one file here; ``POST /hooks/<name>`` then serves it.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from ..base import Cms


@cache
def registry() -> dict[str, Cms]:
    """Every CMS module of this package, by its route name."""
    found: dict[str, Cms] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        cms = getattr(module, "CMS", None)
        if isinstance(cms, Cms):
            found[cms.name] = cms
    return found


def get(name: str) -> Cms | None:
    return registry().get(name)


__all__ = ["Cms", "get", "registry"]
