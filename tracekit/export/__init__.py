"""Writers that turn store tables into the files trainers and hubs read.

Each exporter is a function ``(store, out_dir, **options) -> Path`` registered in
:data:`EXPORTERS` under the name the command line uses (``--to NAME``).
"""

from __future__ import annotations

from tracekit.export.trl import export_trl_grpo, export_trl_sft, sft_view

EXPORTERS = {"trl-sft": export_trl_sft, "trl-grpo": export_trl_grpo}

__all__ = ["EXPORTERS", "export_trl_grpo", "export_trl_sft", "sft_view"]
