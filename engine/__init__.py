"""heaplint's engine: events, readers, replay state, findings, reports, CLI.

The public Python API is :func:`analyze` (see :mod:`heaplint.engine.analyze`).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
