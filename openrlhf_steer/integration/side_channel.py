"""Per-token side data carried next to OpenRLHF's Experience (pure torch; no OpenRLHF import).

OpenRLHF's ``Experience`` has no entropy field. The rollout-policy entropy rides in
``experience.info[OLD_ENTROPY_KEY]``: the replay buffer splits it per sample (``v[i]``) but does not
trim its right padding, and re-batching turns it into a list of 1-D tensors of unequal length.
:func:`align_rows` puts such a list back on the micro-batch's [B, A] grid.
"""

from __future__ import annotations

from typing import List, Sequence, Union

import torch

OLD_ENTROPY_KEY = "_entropy_control_old_entropy"


def align_rows(
    rows: Union[torch.Tensor, Sequence[torch.Tensor]], width: int, mask: torch.Tensor = None
) -> torch.Tensor:
    """Stack per-sample 1-D tensors into [B, width]: right-trim or right-zero-pad each row.

    Rows are aligned at position 0 (OpenRLHF right-pads every per-step field), so trimming the
    right padding and re-padding to the batch width keeps every valid token in place. If ``mask``
    [B, width] is given, positions outside it are zeroed.
    """
    if isinstance(rows, torch.Tensor):
        rows = list(rows) if rows.dim() == 2 else [rows]
    if not rows:
        raise ValueError("align_rows needs at least one row")
    out = torch.zeros(len(rows), width, dtype=torch.float32, device=rows[0].device)
    for i, row in enumerate(rows):
        row = row.reshape(-1).float()
        n = min(row.numel(), width)
        out[i, :n] = row[:n]
    if mask is not None:
        if mask.shape != out.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} does not match the aligned rows {tuple(out.shape)}")
        out = out * mask.to(out.device, out.dtype)
    return out


def pad_cat(tensors: List[torch.Tensor], value: float = 0.0) -> torch.Tensor:
    """Concatenate [B_i, T_i] tensors along rows, right-padding to the largest T."""
    width = max(t.shape[1] for t in tensors)
    padded = [torch.nn.functional.pad(t, (0, width - t.shape[1]), value=value) for t in tensors]
    return torch.cat(padded, dim=0)
