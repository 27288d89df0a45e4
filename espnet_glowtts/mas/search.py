# Copyright 2026 The espnet-glowtts authors
#  Apache 2.0  (http://www.apache.org/licenses/LICENSE-2.0)

"""Monotonic Alignment Search: one entry point that routes each call to a backend.

CPU tensors go to the compiled core (``espnet_glowtts.mas.core``, OpenMP over the batch, GIL
released, reading the caller's memory in place); CUDA tensors stay on their device: two Triton
kernels for float32 (:mod:`espnet_glowtts.mas.triton_path`), else a per-frame torch loop
(:mod:`espnet_glowtts.mas.torch_path`). Without the compiled core, CPU tensors use the torch
path too (same answers, slower) and a warning says how to build the extension. Importing this
module never fails because of the extension.

The state that outlives a call (which backends work, whether the fallback was announced, the
reusable output memory) lives in one :class:`MaximumPath` object; :func:`maximum_path` uses the
process-wide one, and tests build their own.

The search and its tie-breaking are those of the authors' ``monotonic_align`` (Kim et al.,
"Glow-TTS: A Generative Flow for Text-to-Speech via Monotonic Alignment Search", NeurIPS 2020;
github.com/jaywalnut310/glow-tts).
"""

import os
import sys
import threading
import warnings
from typing import Optional

import numpy as np
import torch

from espnet_glowtts.mas import triton_path
from espnet_glowtts.mas.torch_path import maximum_path_torch

BUILD_HINT = (
    "build it with `pip install -e . --no-deps` (or `python setup.py build_ext "
    "--inplace`) in the espnet-glowtts checkout; a C compiler and Cython>=3 are needed"
)


class OutputBuffers:
    """Reuses the memory of a previous output once nothing references it any more.

    A fresh multi-megabyte output costs one page fault per 4 KiB page on first touch, which is
    more than the whole DP. The returned tensor wraps a view of a cached numpy array; the array's
    reference count tells whether any tensor (or view of one) from an earlier call is still alive.
    Only then is a new array allocated. The memory kept is one output of the largest size seen
    per dtype.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._bufs = {}

    def get(self, shape, dtype) -> np.ndarray:
        """An uninitialised array of ``shape`` that no live output shares memory with."""
        n = int(np.prod(shape))
        with self._lock:
            buf = self._bufs.get(dtype)
            # References: the dict, `buf`, getrefcount's argument.
            if buf is None or buf.size < n or sys.getrefcount(buf) > 3:
                buf = np.empty(n, dtype=dtype)
                self._bufs[dtype] = buf
            return buf[:n].reshape(shape)


def idle_threads(max_threads: int) -> int:
    """OpenMP threads for one call: all of them unless the machine is already busy.

    An OpenMP region ends when its last thread does; on an oversubscribed machine a helper
    thread may not get a core for milliseconds, so two threads then take several times longer
    than one. The 1-minute load average (which counts this thread) tells whether cores are idle.
    """
    try:
        idle = (os.cpu_count() or 1) - os.getloadavg()[0] + 1.0
    except (AttributeError, OSError):
        return max_threads
    return max(1, min(max_threads, int(idle + 0.5)))


def _lengths(mask: torch.Tensor, text_lengths, feats_lengths):
    """Valid tokens / frames per item: nonzeros in the first column / first row of the mask."""
    if text_lengths is None:
        text_lengths = (mask.detach()[:, :, 0] != 0).sum(1)
    if feats_lengths is None:
        feats_lengths = (mask.detach()[:, 0, :] != 0).sum(1)
    return torch.as_tensor(text_lengths).long(), torch.as_tensor(feats_lengths).long()


def _check_lengths(t_text: np.ndarray, t_feats: np.ndarray, shape) -> None:
    bad = np.flatnonzero((t_feats < t_text) & (t_text > 0) & (t_feats > 0))
    if bad.size:
        b = int(bad[0])
        raise ValueError(
            f"maximum_path: item {b} has T_feats={int(t_feats[b])} < T_text={int(t_text[b])}; "
            "every token needs at least one frame (check add_blank and the frame-rate "
            "reduction of the squeeze)"
        )
    if (t_text > shape[1]).any() or (t_feats > shape[2]).any():
        raise ValueError(f"maximum_path: lengths exceed the value shape {tuple(shape)}")


def _load_core():
    """The compiled core module, or None and the reason it did not import."""
    try:
        from espnet_glowtts.mas import core
    except ImportError as e:  # not built, or built for another Python
        return None, str(e)
    return core, ""


class MaximumPath:
    """:func:`maximum_path` with its backends and the state kept between calls.

    Args:
        core: The compiled core module, or None to use the torch path on CPU tensors.
        core_error (str): Why the core is missing (quoted once in the fallback warning).
        use_triton (bool): Whether CUDA float32 tensors may use the Triton kernels; switched
            off for good after their first failure.

    """

    def __init__(self, core, core_error: str = "", use_triton: bool = True):
        self.core = core
        self.core_error = core_error
        self.use_triton = use_triton
        self.warned = False  # the missing-core warning is given once per instance
        self.buffers = OutputBuffers()

    @classmethod
    def from_installed(cls) -> "MaximumPath":
        """The backends this installation has: the compiled core if built, Triton if present."""
        return cls(*_load_core(), use_triton=triton_path.available())

    def backend(self) -> str:
        """Names the implementation used for CPU tensors.

        Returns:
            ``"cython-openmp(N threads)"``, ``"cython-serial"`` or ``"torch-fallback"``.
        """
        if self.core is None:
            return "torch-fallback"
        n = self.core.openmp_threads()
        return f"cython-openmp({n} threads)" if n else "cython-serial"

    def threads(self) -> int:
        """The threads a call with ``num_threads=0`` uses now (see :func:`idle_threads`)."""
        return (
            idle_threads(self.core.openmp_threads() or 1)
            if self.core is not None
            else 1
        )

    def __call__(
        self,
        value: torch.Tensor,
        mask: Optional[torch.Tensor],
        *,
        text_lengths: Optional[torch.Tensor] = None,
        feats_lengths: Optional[torch.Tensor] = None,
        num_threads: int = 0,
    ) -> torch.Tensor:
        """See :func:`maximum_path`."""
        if mask is None and (text_lengths is None or feats_lengths is None):
            raise ValueError(
                "maximum_path: give a mask, or both text_lengths and feats_lengths"
            )
        if value.dim() != 3 or (
            mask is not None and tuple(mask.shape) != tuple(value.shape)
        ):
            raise ValueError(
                f"maximum_path: value {tuple(value.shape)} and mask "
                f"{None if mask is None else tuple(mask.shape)} must both be "
                "(B, T_text, T_feats)"
            )
        value = value.detach()
        out_dtype = value.dtype
        if value.dtype not in (torch.float32, torch.float64):
            value = value.float()
        B, T, F = value.shape
        if B == 0 or T == 0 or F == 0:
            return torch.zeros_like(value, dtype=out_dtype)
        t_text, t_feats = _lengths(mask, text_lengths, feats_lengths)

        if (
            value.device.type == "cuda"
            and value.dtype == torch.float32
            and self.use_triton
        ):
            t_text, t_feats = t_text.cpu(), t_feats.cpu()
            _check_lengths(t_text.numpy(), t_feats.numpy(), value.shape)
            try:
                path = triton_path.maximum_path_triton(value, t_text, t_feats)
                return path.to(out_dtype)
            except (
                Exception
            ) as e:  # noqa: BLE001 - a Triton/driver problem: use the torch path
                self.use_triton = False
                warnings.warn(
                    f"espnet_glowtts.mas: the Triton MAS kernels failed ({e!r}); "
                    "using the per-frame torch path on the GPU from now on",
                    RuntimeWarning,
                    stacklevel=3,
                )
        if value.device.type != "cpu" or self.core is None:
            t_text, t_feats = t_text.cpu(), t_feats.cpu()
            _check_lengths(t_text.numpy(), t_feats.numpy(), value.shape)
            if value.device.type == "cpu" and not self.warned:
                warnings.warn(
                    f"espnet_glowtts.mas: the compiled MAS core is not available "
                    f"({self.core_error}); using the slower torch path. To "
                    f"{BUILD_HINT}.",
                    RuntimeWarning,
                    stacklevel=3,
                )
                self.warned = True
            dev = value.device
            return maximum_path_torch(value, t_text.to(dev), t_feats.to(dev)).to(
                out_dtype
            )

        tt = t_text.to("cpu", torch.int32).numpy()
        tf = t_feats.to("cpu", torch.int32).numpy()
        _check_lengths(tt, tf, value.shape)
        # Longest bands first, so OpenMP's dynamic schedule does not end on a long item.
        order = np.argsort(
            -(tt.astype(np.int64) * (tf - tt + 1)), kind="stable"
        ).astype(np.int32)
        v = value.numpy()
        out = self.buffers.get(v.shape, v.dtype)
        self.core.maximum_path_c(v, out, tt, tf, order, num_threads or self.threads())
        path = torch.from_numpy(out)
        return path if out_dtype == path.dtype else path.to(out_dtype)


# The process-wide instance behind maximum_path() and backend().
default = MaximumPath.from_installed()


def maximum_path(
    value: torch.Tensor,
    mask: Optional[torch.Tensor],
    *,
    text_lengths: Optional[torch.Tensor] = None,
    feats_lengths: Optional[torch.Tensor] = None,
    num_threads: int = 0,
) -> torch.Tensor:
    """Monotonic alignment search (Glow-TTS), the authors' semantics and tie-breaking.

    ``Q[i, j] = value[i, j] + max(Q[i, j-1], Q[i-1, j-1])`` on the band of cells that can lie on a
    path from (0, 0) to (T_text-1, T_feats-1); backtracking from the last token at the last frame
    moves to the previous token only when it scored strictly higher (ties stay on the same token).

    Args:
        value: (B, T_text, T_feats) scores, e.g. :func:`log_likelihood`. float32 or float64 (other
            float dtypes are computed in float32). Any strides; never modified. Entries outside
            the mask may hold anything (NaN, inf).
        mask: (B, T_text, T_feats), nonzero on the valid rectangle of each item; only its first
            column (valid tokens) and first row (valid frames) are read. May be None when both
            lengths are given (saves building a full-size mask).
        text_lengths: optional (B,) valid tokens per item; skips reading the mask.
        feats_lengths: optional (B,) valid frames per item; skips reading the mask.
        num_threads: CPU threads for the compiled core; 0: the OpenMP default, reduced to one
            while the machine's load average says no core is idle.

    Returns:
        (B, T_text, T_feats) 0/1 path with value's dtype, on value's device. Each valid frame
        belongs to exactly one valid token; padding is 0. On CPU, the memory of a released
        earlier result may be reused.

    Raises:
        ValueError: if an item has fewer valid frames than valid tokens.
    """
    return default(
        value,
        mask,
        text_lengths=text_lengths,
        feats_lengths=feats_lengths,
        num_threads=num_threads,
    )


def backend() -> str:
    """Names the implementation used for CPU tensors (see :meth:`MaximumPath.backend`)."""
    return default.backend()
