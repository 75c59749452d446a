"""Sequence-classification heads on the first token (RoBERTa style, the same for every model family)."""

from __future__ import annotations

import torch
from torch import nn


class ClassificationHead(nn.Module):
    """``out_proj(dropout(tanh(dense(h[:, 0]))))``: (B, S, H) hidden states -> (B, C) logits."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.dropout(torch.tanh(self.dense(hidden[:, 0]))))
