"""A tiny transformer encoder for text: its forward takes `input_ids` and `attention_mask`
by keyword, as hpo passes the keys of a dict batch (all but `loader.target_key`)."""

from __future__ import annotations

import torch
from torch import nn


class TinyTextClassifier(nn.Module):
    """Token and position embeddings, `layers` encoder layers, a masked mean, a linear head.

    hpo passes `num_classes`; `vocab_size`, `dim`, `heads`, `layers` and `max_length` come
    from `model.params`.
    """

    def __init__(
        self,
        num_classes: int,
        vocab_size: int = 64,
        dim: int = 32,
        heads: int = 2,
        layers: int = 1,
        max_length: int = 64,
        dropout: float = 0.0,
    ):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim must be a multiple of heads, but got dim={dim}, heads={heads}")
        self.tokens = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.positions = nn.Embedding(max_length, dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=dropout, batch_first=True
        )
        # Nested tensors would skip padded positions on some paths only; keep one behaviour.
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[1] > self.positions.num_embeddings:
            raise ValueError(
                f"a batch of {input_ids.shape[1]} tokens is longer than the model's max_length "
                f"{self.positions.num_embeddings}; raise model.params.max_length"
            )
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.tokens(input_ids) + self.positions(positions)
        x = self.encoder(x, src_key_padding_mask=attention_mask == 0)
        mask = attention_mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.head(pooled)
