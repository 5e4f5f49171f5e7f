"""Run a test module's .etl tests under both decoders.

``from etl_impl import etl_implementation`` in a test module runs each of
its tests twice: with the C accelerator (skipped when it is not built) and
with the pure-Python reader, which is the reference.  The fixture is
module-scoped (hypothesis allows those with ``@given``) and switches
``etl_native.NATIVE``, which readers and the decompressor consult each time.
"""

from __future__ import annotations

from types import ModuleType
from typing import Iterator

import pytest

from heaplint.engine.readers import etl_native


def c_module() -> ModuleType | None:
    """The C accelerator when it is built and current, whatever HEAPLINT_PURE_PYTHON says."""
    try:
        from heaplint.engine.readers import _etlfast  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _etlfast if getattr(_etlfast, "API", None) == etl_native.API else None


@pytest.fixture(scope="module", params=["c", "python"], autouse=True)
def etl_implementation(request: pytest.FixtureRequest) -> Iterator[str]:
    saved = etl_native.NATIVE
    if request.param == "c":
        native = c_module()
        if native is None:
            pytest.skip("the C accelerator is not built (a pure-Python install)")
        etl_native.NATIVE = native
    else:
        etl_native.NATIVE = None
    yield request.param
    etl_native.NATIVE = saved
