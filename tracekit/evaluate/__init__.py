"""Evaluation: what a model does on held-out problems, and what traces teach.

* :mod:`~tracekit.evaluate.config`: the eval configuration (strict YAML, frozen dataclasses);
* :mod:`~tracekit.evaluate.problems`: held-out problems and the store reads of evaluation;
* :mod:`~tracekit.evaluate.decontaminate`: evaluation problems never among training problems;
* :mod:`~tracekit.evaluate.budget`: budget forcing (continue a response after a trigger);
* :mod:`~tracekit.evaluate.stage`: ``tracekit eval`` (sample, score, store, resume);
* :mod:`~tracekit.evaluate.results`: Table-1-style results (mean over k, pass@k);
* :mod:`~tracekit.evaluate.skills`: skill analytics on traces or model outputs;
* :mod:`~tracekit.evaluate.report`: the self-contained HTML report (matplotlib plots).
"""

from tracekit.evaluate.config import EvalConfig, load_eval_config
from tracekit.evaluate.stage import run_eval

__all__ = ["EvalConfig", "load_eval_config", "run_eval"]
