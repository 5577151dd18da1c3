"""How a row becomes the model's input: the prompt (one format for training and
evaluation, chat template and thinking mode included), the encoded example with its
answer labels, and the collator that pads a batch.
"""

from __future__ import annotations

from dataclasses import dataclass


THINK_OPEN = "<think>"
EMPTY_THINK = "\n\n</think>\n\n"  # after the stripped "<think>": an empty think block (Qwen3 non-thinking)


def opens_think(tokenizer) -> bool:
    """Whether the tokenizer's chat template ends the generation prompt inside an open
    <think> block (DeepSeek-R1 and its distills: "<｜Assistant｜><think>\n")."""
    if not getattr(tokenizer, "chat_template", None):
        return False
    text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                         add_generation_prompt=True)
    return text.rstrip().endswith(THINK_OPEN)


def prompt_text(tokenizer, challenge: str, thinking: str = "empty") -> str:
    """The model's prompt (one format for training and evaluation).

    * no chat template (the micro base): "{challenge}\nAnswer: ";
    * a chat template: the user turn and the generation prompt;
    * a template that opens <think> (a reasoning model): with `thinking="empty"` the
      think block is closed at once ("<think>\n\n</think>\n\n"), so the model answers
      directly: the format runs are fine-tuned and evaluated in; `thinking="native"`
      leaves it open, so the model reasons first (its own mode; the untuned base's
      reference row).
    """
    if not getattr(tokenizer, "chat_template", None):
        return f"{challenge}\nAnswer: "
    text = tokenizer.apply_chat_template([{"role": "user", "content": challenge}], tokenize=False,
                                         add_generation_prompt=True)
    if thinking == "empty" and text.rstrip().endswith(THINK_OPEN):
        text = text.rstrip() + EMPTY_THINK
    return text


def think_open(tokenizer, thinking: str = "empty") -> bool:
    """Whether prompts in this format leave a <think> block open for the response to close."""
    return thinking == "native" and opens_think(tokenizer)


def encode_example(tokenizer, row: dict, max_length: int, where: str = "train.max_length", index: int | None = None,
                   thinking: str = "empty", which: str | None = None) -> dict:
    """prompt + answer + eos; labels are -100 on the prompt (loss on the answer only).

    An example longer than `max_length` is refused (naming the row, `which` or `row <index>`, and the key `where`),
    never cut: a cut answer would be trained or scored on a part of itself, and a prompt
    cut from the right would leave no answer token, a silent loss of 0.
    """
    prompt = tokenizer(prompt_text(tokenizer, row["challenge"], thinking), add_special_tokens=False)["input_ids"]
    answer = tokenizer(row["answer"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    if len(prompt) + len(answer) > max_length:
        which = which or (f"row {index}" if index is not None else "a row")
        ident = row.get("ID", row.get("id"))
        raise ValueError(f"{which}{f' (ID {ident})' if ident is not None else ''}: prompt + answer + eos is "
                         f"{len(prompt) + len(answer)} tokens, more than {where}={max_length}; raise {where}")
    return {"input_ids": prompt + answer, "labels": [-100] * len(prompt) + answer}


@dataclass
class AnswerCollator:
    """Right-pads a list of encoded examples; padding gets label -100 and mask 0."""

    pad_token_id: int

    def __call__(self, features: list[dict]) -> dict:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), width), -100, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            labels[i, :n] = torch.tensor(f["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
