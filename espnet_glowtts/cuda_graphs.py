# Copyright 2026 The espnet-glowtts authors
#  Apache 2.0  (http://www.apache.org/licenses/LICENSE-2.0)

"""Glow-TTS inference replayed as CUDA graphs (``GlowTTS.enable_cuda_graphs``).

On a GPU, synthesising one utterance is bound by kernel launches, not arithmetic: the
encoder, the duration predictor and 12 flow blocks of 4 WaveNet layers are about a thousand
small kernels (bench/RESULTS.md, section 5: 21 ms at 180 tokens whatever the precision). A
CUDA graph replays them with one launch. Graphs need fixed shapes, so inputs are padded to
a bucket of lengths and masked, which is exact: every layer zeroes padded positions (the
attention masks padded keys), just as for a padded batch. Only the data-dependent steps
stay eager: the duration rounding, the alignment path and the prior noise (drawn outside
the graph, so replays and eager runs draw the same noise).

The mechanism is PyTorch's (``torch.cuda.CUDAGraph``, as in its "CUDA Graphs" notes);
nothing here comes from another Glow-TTS implementation, none of which has it.
"""

from typing import Callable, Dict, Optional, Tuple

import torch
from torch import nn


def _pad(x: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    """Zero-pad ``x`` along ``dim`` to ``size``."""
    if x.size(dim) == size:
        return x
    shape = list(x.shape)
    shape[dim] = size - x.size(dim)
    return torch.cat([x, x.new_zeros(shape)], dim=dim)


def _bucket(length: int, step: int) -> int:
    return -(-length // step) * step


class CapturedCall:
    """``fn(*args)`` captured as one CUDA graph per input signature, then replayed.

    Args:
        fn (Callable): Tensors -> tuple of tensors, free of host synchronisation.
        capture (bool): False runs ``fn`` eagerly (CPU, or to compare).
        pool: A memory pool (``torch.cuda.graph_pool_handle()``) shared with other
            graphs. Safe here because every replay's outputs are cloned at once, so no
            graph's static outputs are read after another graph has run.

    """

    def __init__(self, fn: Callable, capture: bool = True, pool=None):
        self.fn = fn
        self.capture = capture
        self.pool = pool
        self.graphs: Dict[tuple, tuple] = {}

    def __call__(self, *args: Optional[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if not self.capture:
            return self.fn(*args)
        key = tuple(None if a is None else (a.shape, a.dtype) for a in args)
        if key not in self.graphs:
            self.graphs[key] = self._capture(args)
        graph, inputs, outputs = self.graphs[key]
        for static, a in zip(inputs, args):
            if static is not None:
                static.copy_(a)
        graph.replay()
        # The next replay overwrites the static outputs.
        return tuple(o.clone() for o in outputs)

    def _capture(self, args) -> tuple:
        inputs = [None if a is None else a.clone() for a in args]
        # Warm-up on a side stream (cuDNN/cuBLAS pick their kernels and workspaces there).
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self.fn(*inputs)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            outputs = self.fn(*inputs)
        return graph, inputs, outputs


class GraphedInference:
    """The encoder + duration predictor and the reverse flows of a GlowTTS as graphs.

    Args:
        model (GlowTTS): The model (on a CUDA device, in eval mode).
        token_bucket (int): Token lengths are padded up to a multiple of this.
        frame_bucket (int): Frame lengths are padded up to a multiple of this (rounded
            to a multiple of the squeeze factor).
        capture (bool): False runs the same padded computation eagerly.

    """

    def __init__(
        self,
        model: nn.Module,
        token_bucket: int = 32,
        frame_bucket: int = 128,
        capture: bool = True,
    ):
        f = model.squeeze_factor
        self.model = model
        self.token_bucket = token_bucket
        self.frame_bucket = _bucket(frame_bucket, f)
        self.capture = capture
        # One memory pool for all buckets: each graph's activations would otherwise keep
        # a pool of their own.
        pool = torch.cuda.graph_pool_handle() if capture else None
        self._encode = CapturedCall(model._encode_and_predict, capture, pool)
        self._decode = CapturedCall(self._decode_padded, capture, pool)

    def _decode_padded(self, z, y_mask, g):
        return (self.model.decoder(z, y_mask, g, reverse=True)[0],)

    def encode(self, text, text_lengths, g):
        """As ``GlowTTS._encode_and_predict``.

        Returns:
            Tuple: mean, log_std (B, odim, T_text'), x_mask (B, 1, T_text'),
                x_lengths (B,), logw (B, 1, T_text').

        """
        n = text.size(1)
        text = _pad(text, 1, _bucket(n, self.token_bucket))
        outputs = self._encode(text, text_lengths, g)
        width = 2 * n + 1 if self.model.add_blank else n
        return tuple(o if o.dim() == 1 else o[..., :width] for o in outputs)

    def decode(self, z, y_mask, g):
        """As ``GlowTTS.decoder(z, y_mask, g, reverse=True)[0]``: features (B, odim, T)."""
        n = z.size(2)
        size = _bucket(n, self.frame_bucket)
        (y,) = self._decode(_pad(z, 2, size), _pad(y_mask, 2, size), g)
        return y[..., :n]
