"""The compiled parts of tracekit: the C fast paths of the arithmetic verifier and of reading
a scored line's response.

Everything else is configured in pyproject.toml. Both extensions are optional: without a C
compiler the build skips them and tracekit.tasks.arith runs its Python evaluator alone (same
results, about 2x slower verification), tracekit.score reads responses with json's scanner
(same results, slower `tracekit score`).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tracekit.tasks._arith", ["tracekit/tasks/_arith.c"], optional=True, extra_compile_args=["-O2"]
        ),
        Extension("tracekit._jsonscan", ["tracekit/_jsonscan.c"], optional=True, extra_compile_args=["-O2"]),
    ]
)
