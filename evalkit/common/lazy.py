"""Names resolved on first use: `"package.module:attr"` (or a bare module) -> the object.

The public API, the simulator's exports and the scorer and reader registries all name their targets
this way, so `import evalkit` imports nothing heavy until a name is used.
"""

from __future__ import annotations

import importlib
from typing import Any


def load(target: str) -> Any:
    """The object `target` names: `module:attr`, or the module itself when there is no `:attr`."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module
