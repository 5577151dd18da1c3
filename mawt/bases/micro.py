"""The micro base model of the embedded default setup (MAWT_SPEC section 5).

A character-level tokenizer trained with the `tokenizers` library (wrapped as a
`PreTrainedTokenizerFast`) and a small Qwen2-architecture model, pre-trained here
with the transformers `Trainer` on single-step puzzle families, then saved with
`save_pretrained` so that fine-tuning treats it exactly like a hub model.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mawt.common import atomic
from mawt.data import puzzles

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast, Qwen2ForCausalLM

# torch, tokenizers and transformers are imported where they are used: `MicroConfig` alone (the
# workflow's shape check at every start, mawt/training/preflight.py) must not pay seconds of imports

SPECIAL = {"pad_token": "<pad>", "eos_token": "<eos>", "unk_token": "<unk>"}


@dataclass
class MicroConfig:
    # Model size: 4 layers x 128 wide learns the simple families in ~2 CPU-minutes.
    num_layers: int = 4
    hidden: int = 128
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 384
    max_positions: int = 128
    # Pre-training data: single-step puzzles of these families (the fine-tuning
    # task must be new to the base, e.g. their compositions).
    families: list[str] = field(default_factory=lambda: ["reverse", "drop_first", "drop_last", "swap_ends",
                                                         "sort_letters", "double_last", "shift"])
    rows: int = 20000
    difficulty: int = 2
    # `words` (the short word list: memorisable, the model learns the families fast), `letters`
    # (random strings: only a real copy-and-transform skill helps) or `mixed` (half of each).
    vocabulary: str = "mixed"
    # Optimisation.
    steps: int = 3000  # letter strings need the longer run (the copy skill appears after ~1500 steps)
    batch_size: int = 32
    learning_rate: float = 3e-3
    seed: int = 0


def train_tokenizer() -> PreTrainedTokenizerFast:
    """Character-level tokenizer: a byte-level BPE trained with no merges.

    Every byte is one token. Byte-level BPE is also what Qwen2's tokenizer class
    is, so `AutoTokenizer` (which picks the class from the model type) reads the
    saved tokenizer back with identical ids.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1, special_tokens=list(SPECIAL.values()), show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, nothing merged
    )
    tok.train_from_iterator([string.printable], trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL)


def build_model(cfg: MicroConfig, tokenizer: PreTrainedTokenizerFast) -> Qwen2ForCausalLM:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden, intermediate_size=cfg.intermediate,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.kv_heads,
        max_position_embeddings=cfg.max_positions, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(cfg.seed)
    return Qwen2ForCausalLM(config)


def pretraining_rows(cfg: MicroConfig) -> list[dict]:
    """Single-step puzzles of `cfg.families`; word puzzles repeat (a short list), letter strings do not."""
    import random

    def make(n: int, vocabulary: str, seed: int) -> list[dict]:
        return puzzles.generate(n, cfg.families, chain=1, difficulty=cfg.difficulty, seed=seed,
                                vocabulary=vocabulary, distinct=vocabulary == "letters")

    if cfg.vocabulary != "mixed":
        return make(cfg.rows, cfg.vocabulary, cfg.seed)
    rows = make(cfg.rows // 2, "words", cfg.seed) + make(cfg.rows - cfg.rows // 2, "letters", cfg.seed + 1)
    random.Random(cfg.seed).shuffle(rows)
    return rows


def pretrain(cfg: MicroConfig, out_dir: Path, log_steps: int = 100) -> Path:
    """Train the micro base on single-step puzzles; save model + tokenizer to out_dir."""
    import torch
    from transformers import Trainer, TrainingArguments, set_seed

    from mawt.data.prompts import AnswerCollator, encode_example

    set_seed(cfg.seed)
    tokenizer = train_tokenizer()
    model = build_model(cfg, tokenizer)
    rows = pretraining_rows(cfg)
    examples = [encode_example(tokenizer, r, cfg.max_positions) for r in rows]
    args = TrainingArguments(
        output_dir=str(out_dir / "trainer"), max_steps=cfg.steps, per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate, lr_scheduler_type="cosine", warmup_steps=min(100, cfg.steps // 10),
        weight_decay=0.0, logging_steps=log_steps, save_strategy="no", report_to=[], seed=cfg.seed,
        data_seed=cfg.seed, use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=examples,
                      data_collator=AnswerCollator(tokenizer.pad_token_id))
    trainer.train()
    with atomic.atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return out_dir
