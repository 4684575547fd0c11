"""The run: a configuration in, every stage over a store, a summary out.

* :mod:`~tracekit.pipeline.config`: the run configuration (strict YAML, frozen dataclasses);
* :mod:`~tracekit.pipeline.run`: the straight list of stage calls, with resume;
* :mod:`~tracekit.pipeline.summary`: the run summary and counters, as text.
"""

from tracekit.pipeline.config import RunConfig, load_config
from tracekit.pipeline.run import run_pipeline

__all__ = ["RunConfig", "load_config", "run_pipeline"]
