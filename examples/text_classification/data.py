"""A text dataset whose items are dicts, as a tokenizer's output is: `input_ids`,
`attention_mask` and `labels`. No downloads: the sentences are generated here, and the
tokenizer is a whitespace one written here too.

The spec names `load` as `data.name` and `pad_batch` as `loader.collate`; hpo gives the model
every key of a batch but `labels` (`loader.target_key`) as keyword arguments.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import torch

# Sentiment words; "not" before one flips it, so word counts alone do not decide.
POSITIVE = ("good", "great", "excellent", "wonderful", "fun", "moving", "clever", "lovely")
NEGATIVE = ("bad", "awful", "boring", "terrible", "dull", "silly", "clumsy", "tedious")
SUBJECTS = ("the movie", "the plot", "the acting", "this film", "the story", "the ending")
FILLERS = ("really", "quite", "very", "rather", "so", "truly")


def make_sentences(count: int, seed: int) -> tuple[list[str], list[int]]:
    """`count` short reviews and their labels (1: positive), from templates."""
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(count):
        positive = rng.random() < 0.5
        negated = rng.random() < 0.3
        word = rng.choice(POSITIVE if positive != negated else NEGATIVE)
        filler = rng.choice(FILLERS) + " " if rng.random() < 0.5 else ""
        texts.append(f"{rng.choice(SUBJECTS)} was {'not ' if negated else ''}{filler}{word}")
        labels.append(int(positive))
    return texts, labels


class WhitespaceTokenizer:
    """Lower-cased words split on whitespace, each mapped to its id in a fixed vocabulary.

    Id 0 pads, id 1 stands for words outside the vocabulary.
    """

    PAD, UNKNOWN = 0, 1

    def __init__(self, vocabulary: Sequence[str]):
        self.ids = {word: i + 2 for i, word in enumerate(vocabulary)}

    @classmethod
    def fit(cls, texts: Iterable[str], max_size: int) -> WhitespaceTokenizer:
        """The `max_size - 2` most frequent words of `texts` (ties by first appearance)."""
        counts = Counter(word for text in texts for word in text.lower().split())
        return cls([word for word, _ in counts.most_common(max(0, max_size - 2))])

    def __len__(self) -> int:
        return len(self.ids) + 2

    def encode(self, text: str, max_length: int) -> list[int]:
        words = text.lower().split()[:max_length]
        return [self.ids.get(word, self.UNKNOWN) for word in words]


class ReviewDataset(torch.utils.data.Dataset):
    """Encoded sentences; each item a dict of `input_ids`, `attention_mask` and `labels`.

    Items have the length of their sentence: `pad_batch` pads a batch to its longest.
    `targets` holds the labels, so hpo stratifies its splits by them.
    """

    def __init__(
        self,
        texts: Sequence[str],
        labels: Sequence[int],
        tokenizer: WhitespaceTokenizer,
        max_length: int,
    ):
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        self.encoded = [tokenizer.encode(text, max_length) for text in texts]
        self.targets = list(labels)

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = torch.tensor(self.encoded[i], dtype=torch.long)
        return {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "labels": torch.tensor(self.targets[i]),
        }


def pad_batch(items: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """`loader.collate`: stack the items, padding ids and masks with 0 to the longest."""
    longest = max(len(item["input_ids"]) for item in items)

    def padded(key: str) -> torch.Tensor:
        out = torch.zeros(len(items), longest, dtype=torch.long)
        for row, item in enumerate(items):
            out[row, : len(item[key])] = item[key]
        return out

    return {
        "input_ids": padded("input_ids"),
        "attention_mask": padded("attention_mask"),
        "labels": torch.stack([item["labels"] for item in items]),
    }


def load(config: dict[str, Any]) -> ReviewDataset:
    """The spec's `data.name`: the whole dataset, which hpo splits (stratified by `targets`).

    Args:
        config: the spec's data section, with this function's own keys `sentences` (how many,
            default 2,000), `max_length` (words kept per sentence, default 16) and
            `vocab_size` (the tokenizer's, padding and unknown included, default 64; the
            model's `vocab_size` must be at least this).
    """
    # Generated from a fixed seed: the data is the same in every trial; the experiment's
    # seed moves the split only, as for hpo's own datasets.
    texts, labels = make_sentences(int(config.get("sentences", 2000)), seed=0)
    tokenizer = WhitespaceTokenizer.fit(texts, int(config.get("vocab_size", 64)))
    return ReviewDataset(texts, labels, tokenizer, int(config.get("max_length", 16)))
