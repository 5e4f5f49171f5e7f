"""heaplint's engine: events, readers, replay state, findings, reports, CLI.

The public Python API is :func:`analyze` (see :mod:`heaplint.engine.analyze`).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "analyze"]

# Bound eagerly (not via a module __getattr__): the submodule has the same name
# as the function, and the import system would otherwise leave the *module* as
# the package attribute whenever heaplint.engine.analyze is imported first.
# heaplint.engine.analyze imports the rule compiler only inside functions, so
# this creates no import cycle.
from heaplint.engine.analyze import analyze  # noqa: E402
