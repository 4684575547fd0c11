"""The one compiled part of tracekit: the C fast path of the arithmetic verifier.

Everything else is configured in pyproject.toml. The extension is optional: without a C
compiler the build skips it and tracekit.tasks.arith runs its Python evaluator alone
(same results, about 2x slower verification).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tracekit.tasks._arith", ["tracekit/tasks/_arith.c"], optional=True, extra_compile_args=["-O2"]
        )
    ]
)
