"""Monotonic Alignment Search (MAS) for Glow-TTS.

Public API:

* :func:`maximum_path` - the most likely monotonic alignment of frames to tokens.
* :func:`log_likelihood` - the value matrix MAS maximises over.
* :func:`backend` - which implementation runs on CPU tensors.

CPU tensors go to the compiled core (``espnet_glowtts.mas.core``, OpenMP over the batch, GIL
released, reading the caller's memory in place); CUDA tensors stay on their device: two Triton
kernels for float32 (:mod:`espnet_glowtts.mas.triton_path`), else a per-frame torch loop
(:mod:`espnet_glowtts.mas.torch_path`). Without the compiled core, CPU tensors use the torch
path too (same answers, slower) and a warning says how to build the extension. Importing this
package never fails because of the extension.
"""

import os
import sys
import threading
import warnings
from typing import Optional

import numpy as np
import torch

from espnet_glowtts.mas.likelihood import log_likelihood
from espnet_glowtts.mas import triton_path
from espnet_glowtts.mas.torch_path import maximum_path_torch

try:
    from espnet_glowtts.mas import core as _core
except ImportError as e:  # not built, or built for another Python
    _core = None
    _CORE_ERROR = str(e)

__all__ = ["maximum_path", "log_likelihood", "backend"]

_BUILD_HINT = ("build it with `pip install -e . --no-deps` (or `python setup.py build_ext "
               "--inplace`) in the espnet-glowtts checkout; a C compiler and Cython>=3 are needed")
_warned = False
_triton_ok = triton_path.available()


def backend() -> str:
    """Names the implementation used for CPU tensors.

    Returns:
        ``"cython-openmp(N threads)"``, ``"cython-serial"`` or ``"torch-fallback"``.
    """
    if _core is None:
        return "torch-fallback"
    n = _core.openmp_threads()
    return f"cython-openmp({n} threads)" if n else "cython-serial"


def _lengths(mask: torch.Tensor, text_lengths, feats_lengths):
    """Valid tokens / frames per item: nonzeros in the first column / first row of the mask."""
    if text_lengths is None:
        text_lengths = (mask.detach()[:, :, 0] != 0).sum(1)
    if feats_lengths is None:
        feats_lengths = (mask.detach()[:, 0, :] != 0).sum(1)
    return torch.as_tensor(text_lengths).long(), torch.as_tensor(feats_lengths).long()


def _auto_threads() -> int:
    """OpenMP threads for one call: all of them unless the machine is already busy.

    An OpenMP region ends when its last thread does; on an oversubscribed machine a helper
    thread may not get a core for milliseconds, so two threads then take several times longer
    than one. The 1-minute load average (which counts this thread) tells whether cores are idle.
    """
    n = _core.openmp_threads() or 1
    try:
        idle = (os.cpu_count() or 1) - os.getloadavg()[0] + 1.0
    except (AttributeError, OSError):
        return n
    return max(1, min(n, int(idle + 0.5)))


def _check_lengths(t_text: np.ndarray, t_feats: np.ndarray, shape) -> None:
    bad = np.flatnonzero((t_feats < t_text) & (t_text > 0) & (t_feats > 0))
    if bad.size:
        b = int(bad[0])
        raise ValueError(
            f"maximum_path: item {b} has T_feats={int(t_feats[b])} < T_text={int(t_text[b])}; "
            "every token needs at least one frame (check add_blank and the frame-rate "
            "reduction of the squeeze)")
    if (t_text > shape[1]).any() or (t_feats > shape[2]).any():
        raise ValueError(f"maximum_path: lengths exceed the value shape {tuple(shape)}")


class _OutputBuffers:
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
        n = int(np.prod(shape))
        with self._lock:
            buf = self._bufs.get(dtype)
            # References: the dict, `buf`, getrefcount's argument.
            if buf is None or buf.size < n or sys.getrefcount(buf) > 3:
                buf = np.empty(n, dtype=dtype)
                self._bufs[dtype] = buf
            return buf[:n].reshape(shape)


_out_buffers = _OutputBuffers()


def maximum_path(value: torch.Tensor, mask: Optional[torch.Tensor], *,
                 text_lengths: Optional[torch.Tensor] = None,
                 feats_lengths: Optional[torch.Tensor] = None,
                 num_threads: int = 0) -> torch.Tensor:
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
        belongs to exactly one valid token; padding is 0.

    Raises:
        ValueError: if an item has fewer valid frames than valid tokens.
    """
    global _warned, _triton_ok
    if mask is None and (text_lengths is None or feats_lengths is None):
        raise ValueError("maximum_path: give a mask, or both text_lengths and feats_lengths")
    if value.dim() != 3 or (mask is not None and tuple(mask.shape) != tuple(value.shape)):
        raise ValueError(f"maximum_path: value {tuple(value.shape)} and mask "
                         f"{None if mask is None else tuple(mask.shape)} must both be "
                         "(B, T_text, T_feats)")
    value = value.detach()
    out_dtype = value.dtype
    if value.dtype not in (torch.float32, torch.float64):
        value = value.float()
    B, T, F = value.shape
    if B == 0 or T == 0 or F == 0:
        return torch.zeros_like(value, dtype=out_dtype)
    t_text, t_feats = _lengths(mask, text_lengths, feats_lengths)

    if value.device.type == "cuda" and value.dtype == torch.float32 and _triton_ok:
        t_text, t_feats = t_text.cpu(), t_feats.cpu()
        _check_lengths(t_text.numpy(), t_feats.numpy(), value.shape)
        try:
            path = triton_path.maximum_path_triton(value, t_text, t_feats)
            return path.to(out_dtype)
        except Exception as e:  # noqa: BLE001 - a Triton/driver problem: use the torch path
            _triton_ok = False
            warnings.warn(f"espnet_glowtts.mas: the Triton MAS kernels failed ({e!r}); using "
                          "the per-frame torch path on the GPU from now on", RuntimeWarning,
                          stacklevel=2)
    if value.device.type != "cpu" or _core is None:
        t_text, t_feats = t_text.cpu(), t_feats.cpu()
        _check_lengths(t_text.numpy(), t_feats.numpy(), value.shape)
        if value.device.type == "cpu" and not _warned:
            warnings.warn(f"espnet_glowtts.mas: the compiled MAS core is not available "
                          f"({_CORE_ERROR}); using the slower torch path. To {_BUILD_HINT}.",
                          RuntimeWarning, stacklevel=2)
            _warned = True
        dev = value.device
        return maximum_path_torch(value, t_text.to(dev), t_feats.to(dev)).to(out_dtype)

    tt = t_text.to("cpu", torch.int32).numpy()
    tf = t_feats.to("cpu", torch.int32).numpy()
    _check_lengths(tt, tf, value.shape)
    order = np.argsort(-(tt.astype(np.int64) * (tf - tt + 1)), kind="stable").astype(np.int32)
    v = value.numpy()
    out = _out_buffers.get(v.shape, v.dtype)
    _core.maximum_path_c(v, out, tt, tf, order, num_threads or _auto_threads())
    path = torch.from_numpy(out)
    return path if out_dtype == path.dtype else path.to(out_dtype)
