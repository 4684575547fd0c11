"""Real TRL trainers running real steps on exported data, with a tiny model built locally (CPU)."""

import json

import polars as pl
import pytest

trl = pytest.importorskip("trl")

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    folder = tmp_path_factory.mktemp("tiny")
    corpus = [
        "<think> <sample> <reflect> <answer> </answer> <verdict> Correct Incorrect What is 12 * 3 ?",
        "Using the numbers 1 2 3 make 9 ( 1 + 2 ) * 3 = 9 step by step the answer is",
    ] * 50
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<|im_start|>", "<|im_end|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    from tokenizers import decoders

    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="<|im_end|>", bos_token=None
    )
    fast.chat_template = CHATML
    fast.save_pretrained(folder)
    config = Qwen2Config(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
    )
    Qwen2ForCausalLM(config).save_pretrained(folder)
    return str(folder)


def test_sft_runs_real_steps_on_exported_traces(tmp_path, filled_store, tiny_model):
    from tracekit.export import export_trl_sft
    from tracekit.rearrange import RearrangeConfig, rearrange_store
    from tracekit.trainers.sft import train_sft

    rearrange_store(filled_store, RearrangeConfig(formats=("*C",), n_max=2))
    out = export_trl_sft(filled_store, tmp_path / "sft")
    trainer = train_sft(
        out,
        tiny_model,
        tmp_path / "ckpt",
        max_steps=2,
        per_device_train_batch_size=2,
        max_length=512,
        use_cpu=True,
        bf16=False,
        logging_steps=1,
        save_strategy="no",
    )
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert trainer.state.global_step == 2 and losses and all(loss > 0 for loss in losses)


def test_grpo_runs_real_steps_with_verifier_rewards(tmp_path, tiny_model):
    from tracekit.export import export_trl_grpo
    from tracekit.store import Store
    from tracekit.tasks import get_task
    from tracekit.trainers.grpo import train_grpo

    store = Store(tmp_path / "st", create=True)
    store.write("problems", get_task("countdown").generate(4, seed=0, n_numbers=3))
    data = export_trl_grpo(store, tmp_path / "grpo")
    df = pl.read_parquet(data)
    assert df["prompt"][0][0]["role"] == "user" and json.loads(df["meta"][0])["target"]
    seen = []

    def varied(completions, **kw):  # rewards must vary for a non-zero GRPO loss
        seen.append(len(completions))
        return [float(len(c[-1]["content"]) % 3) for c in completions]

    from tracekit.trainers.rewards import correctness_reward

    trainer = train_grpo(
        data,
        tiny_model,
        tmp_path / "ckpt",
        reward_funcs=[correctness_reward, varied],
        max_steps=1,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        use_cpu=True,
        bf16=False,
        logging_steps=1,
        save_strategy="no",
    )
    assert trainer.state.global_step == 1 and seen
