"""Thin TRL adapters over tracekit's exports (installed as ``tracekit.trainers``).

Nothing in ``tracekit`` imports this package; it imports ``trl`` only inside the
functions that need it.
"""
