"""Whether the .etl reader runs its optional C accelerator.

``heaplint.engine.readers._etlfast`` (engine/readers/_etlfast.c, built by
setup.py when a C compiler is present) decompresses LZ77 buffers and decodes
the common records of a buffer; the pure-Python code in lzxpress.py and
etl.py does the same and stays the fallback and the reference (the tests run
the .etl suite under both).  The accelerator is used when it is built, its
API matches this code, and the environment variable ``HEAPLINT_PURE_PYTHON``
is unset (or ``0``).  ``heaplint --version`` prints :func:`status`.

:data:`NATIVE` is read each time a reader starts or a buffer is
decompressed, so tests switch implementations by setting it.
"""

from __future__ import annotations

import os
from types import ModuleType

#: the C module's API version this code expects (``_etlfast.API``)
API = 3


def _load() -> tuple[ModuleType | None, str]:
    if os.environ.get("HEAPLINT_PURE_PYTHON", "") not in ("", "0"):
        return None, "pure Python, HEAPLINT_PURE_PYTHON set"
    try:
        from heaplint.engine.readers import _etlfast  # type: ignore[attr-defined]
    except ImportError:
        return None, "pure Python, C accelerator not built"
    if getattr(_etlfast, "API", None) != API:
        return None, "pure Python, C accelerator stale: reinstall"
    return _etlfast, "C accelerator"


#: the C module as loaded, and why it is not when it is not
_LOADED, _STATUS = _load()
#: the C module in use, or None for pure Python
NATIVE = _LOADED


def status() -> str:
    """How .etl files are decoded, for ``heaplint --version``."""
    if NATIVE is not None:
        return "C accelerator"
    return "pure Python, C accelerator switched off" if _LOADED is not None else _STATUS
