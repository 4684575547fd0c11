"""Export the embedded SmolLM2-135M-Instruct (GGUF) as a bf16 safetensors folder that vLLM loads.

    python benchmarks/vllm/export_model.py OUT [--dtype bfloat16]

Prints the folder. A folder already exported with the same settings is reused (see
:func:`tracekit.sampling.hf.export_embedded`).
"""

from __future__ import annotations

import argparse

from tracekit.sampling.hf import export_embedded

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--dtype", default="bfloat16")
    args = parser.parse_args()
    print(export_embedded(args.out, dtype=args.dtype))
