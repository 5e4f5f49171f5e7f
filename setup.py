"""Build hook for the optional C accelerators: the .etl reader's, and the
block scan of ``--jobs`` partitions of canonical JSON Lines.

Everything else about the project is in pyproject.toml.  The extensions are
``optional``: without a C compiler and Python headers the build skips them and
heaplint runs the pure-Python code (``heaplint --version`` says which for .etl).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "heaplint.engine.readers._etlfast",
            sources=["engine/readers/_etlfast.c", "engine/readers/etlfast_lzx.c", "engine/readers/etlfast_walk.c",
                     "engine/readers/etlfast_split.c", "engine/readers/etlfast_stacks.c"],
            depends=["engine/readers/etlfast_lzx.h", "engine/readers/etlfast_walk.h"],
            optional=True,
        ),
        Extension("heaplint.engine.readers._jsonlscan", sources=["engine/readers/_jsonlscan.c"], optional=True),
    ]
)
