"""Build glue for the optional C extension ``jetflow._speedups`` (metadata is in pyproject.toml).

``optional=True``: without a working C compiler the install still succeeds and
:mod:`jetflow.codec.accel` falls back to the pure-Python reference implementations.
"""

import sys

from setuptools import Extension, setup

if sys.platform == "win32":
    compile_args = ["/O2"]
else:
    compile_args = ["-std=c99", "-O2", "-Wall", "-Wextra"]

setup(
    ext_modules=[
        Extension(
            "jetflow._speedups",
            ["jetflow/_speedups.c"],
            optional=True,
            extra_compile_args=compile_args,
        )
    ]
)
