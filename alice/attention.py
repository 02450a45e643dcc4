"""Attention for padding-free training without a dense mask: ``--attn-implementation varlen``.

A padding-free batch is one row holding several training rows back to back, told apart by
position_ids that restart at 0. transformers' SDPA path keeps rows apart with a block-diagonal
mask over the whole flattened row (T x T), which turns off SDPA's causal fast path: measured on an
H200 at the fair test's shape (16 rows, 5488 tokens), attention took 20.4 ms against 3.3 ms for the
same rows padded. Here each row attends only to itself, causally, with no mask at all:

- on a CUDA GPU, torch's variable-length flash attention (``torch.nn.attention.varlen``, torch
  2.10+), one kernel over all rows;
- elsewhere (CPU, older torch, dropout), SDPA called once per row with ``is_causal``.

Batches that are not padding-free (padded rows with an attention mask, generation with a cache)
go to transformers' own SDPA unchanged. The numbers are the same attention as the masked path up
to floating-point rounding (tests/test_attention.py compares losses and gradients).
"""

from __future__ import annotations

import functools
import inspect
import itertools

import torch

NAME = "varlen"
_last_segments: list = [None, None]  # (position_ids, (cu_seqlens, max_len)): one forward's layers share them


def register() -> str:
    """Registers the attention and its mask with transformers (idempotent); the name to pass as
    ``attn_implementation``."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, varlen_attention_forward)
    AttentionMaskInterface.register(NAME, varlen_mask)
    return NAME


def varlen_mask(batch_size: int, q_length: int, kv_length: int, *args, attention_mask: torch.Tensor | None = None,
                **kwargs) -> torch.Tensor | None:
    """No mask for a batch without padding (rows are kept apart by their position_ids); SDPA's mask
    otherwise."""
    from transformers.masking_utils import sdpa_mask

    if attention_mask is None or bool(attention_mask[:, -kv_length:].all()):
        return None
    return sdpa_mask(batch_size, q_length, kv_length, *args, attention_mask=attention_mask, **kwargs)


def row_bounds(position_ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Cumulative row starts (int32, rows + 1) and the longest row of one flattened batch row."""
    if _last_segments[0] is position_ids:
        return _last_segments[1]
    positions = position_ids[0]
    starts = torch.nonzero(positions == 0).flatten()
    if starts.numel() == 0 or int(starts[0]) != 0:
        starts = torch.cat([starts.new_zeros(1), starts])
    total = positions.new_tensor([positions.numel()])
    cu_seqlens = torch.cat([starts, total]).to(torch.int32)
    bounds = (cu_seqlens, int((cu_seqlens[1:] - cu_seqlens[:-1]).max()))
    _last_segments[:] = [position_ids, bounds]
    return bounds


@functools.cache
def _varlen_kernel():
    """torch's varlen_attn and how its signature asks for causality and grouped heads, or None (looked up
    once, not in every layer's call)."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    parameters = inspect.signature(varlen_attn).parameters
    return varlen_attn, "window_size" in parameters, "enable_gqa" in parameters


def varlen_attention_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                             attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                             **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' attention interface: query (1, heads, T, dim), key and value (1, kv heads, T,
    dim) of one flattened row -> (1, T, heads, dim)."""
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    position_ids = kwargs.get("position_ids")
    flattened = (attention_mask is None and position_ids is not None and query.shape[0] == 1
                 and position_ids.shape[-1] == query.shape[2] == key.shape[2] and query.shape[2] > 1)
    if not flattened:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    cu_seqlens, max_len = row_bounds(position_ids)
    groups = query.shape[1] // key.shape[1]
    # Flash attention takes half precision only: under autocast (full fine-tuning's fp32 weights) the
    # rotary embedding hands over fp32 queries and keys, which SDPA would cast itself.
    half = (torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else query.dtype) \
        if query.is_cuda else None
    kernel = _varlen_kernel() if half in (torch.bfloat16, torch.float16) and dropout == 0.0 else None
    if kernel is not None:
        varlen_attn, window_form, gqa_form = kernel
        q = query[0].transpose(0, 1).to(half)
        k, v = key[0].transpose(0, 1).to(half), value[0].transpose(0, 1).to(half)
        options: dict = {"scale": scaling}
        if groups > 1:
            if gqa_form:
                options["enable_gqa"] = True
            else:
                k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        options.update({"window_size": (-1, 0)} if window_form else {"is_causal": True})
        out = varlen_attn(q, k, v, cu_seqlens, cu_seqlens, max_len, max_len, **options)
        return out.unsqueeze(0), None
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    bounds = cu_seqlens.tolist()
    rows = [torch.nn.functional.scaled_dot_product_attention(
        query[:, :, start:end], key[:, :, start:end], value[:, :, start:end], dropout_p=dropout, scale=scaling,
        is_causal=True) for start, end in itertools.pairwise(bounds)]
    return torch.cat(rows, dim=2).transpose(1, 2).contiguous(), None
