"""Build hook for the optional C accelerator of the .etl reader.

Everything else about the project is in pyproject.toml.  The extension is
``optional``: without a C compiler and Python headers the build skips it and
heaplint runs the pure-Python reader (``heaplint --version`` says which).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "heaplint.engine.readers._etlfast",
            sources=["engine/readers/_etlfast.c", "engine/readers/etlfast_lzx.c", "engine/readers/etlfast_walk.c",
                     "engine/readers/etlfast_split.c"],
            depends=["engine/readers/etlfast_lzx.h", "engine/readers/etlfast_walk.h"],
            optional=True,
        )
    ]
)
