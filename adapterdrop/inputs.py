"""Random input batches with a fixed seed: full-length sequences, no padding, no attention mask."""

from __future__ import annotations

from dataclasses import dataclass

import torch

NUM_LABELS = 2


@dataclass(frozen=True)
class Batch:
    """Token ids ``(B, S)`` in ``[0, vocab_size)``, labels ``(B,)`` in ``[0, NUM_LABELS)``; one device."""

    input_ids: torch.Tensor
    labels: torch.Tensor


def make_batch(vocab_size: int, batch_size: int, seq_len: int, device: str = "cpu", seed: int = 0) -> Batch:
    """The same batch for the same arguments: drawn on the CPU from its own generator, then moved."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, vocab_size, (batch_size, seq_len), generator=generator)
    labels = torch.randint(0, NUM_LABELS, (batch_size,), generator=generator)
    return Batch(input_ids=input_ids.to(device), labels=labels.to(device))
