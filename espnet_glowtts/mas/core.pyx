# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Monotonic Alignment Search: the compiled CPU core.

The DP of Glow-TTS, ``Q[i, j] = v[i, j] + max(Q[i, j-1], Q[i-1, j-1])``, is run only on the band
of cells that can lie on a monotonic path from (0, 0) to (T-1, F-1): ``j - (F - T) <= i <= j``.

Layout of the work for one item (T tokens, F frames):

* Rows are processed in blocks of ``R`` tokens. Inside a block the frames are swept left to
  right; each frame updates the block's ``R`` cells (one column of the block), which depend only
  on the previous column, so the ``R`` updates are independent (no serial dependency chain).
  Each row of the value matrix is read as its own contiguous stream, which hardware prefetchers
  follow; the running column lives in a small stack array.
* The bottom row of a block is handed to the next block through a row buffer.
* The backtracking decision of each cell is one bit (``R`` bits per block column, one word), so
  the scratch memory per item is ``T * F / 8`` bytes and stays in L1/L2.
* Backtracking yields the first frame of every token; the output rows are then written once
  (zeros, a run of ones, zeros).

Items are distributed over OpenMP threads (largest first, dynamic schedule) with the GIL
released. Value may have any strides (the caller's memory is read in place).
"""

from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc
from libc.string cimport memset
from libc.stdint cimport uint16_t

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define MAS_OPENMP 1
    static int mas_max_threads(void) { return omp_get_max_threads(); }
    #else
    #define MAS_OPENMP 0
    static int mas_max_threads(void) { return 1; }
    #endif
    """
    int MAS_OPENMP
    int mas_max_threads() noexcept nogil

ctypedef fused real:
    float
    double

cdef enum:
    R = 16  # tokens per block; one uint16_t of decision bits per block column

cdef extern from "math.h" nogil:
    double INFINITY


def openmp_threads():
    """Returns the number of OpenMP threads a call uses by default (0 if built without OpenMP)."""
    return mas_max_threads() if MAS_OPENMP else 0


cdef inline unsigned int _column(const real* col, Py_ssize_t rs, real* qq,
                                 int rlo, int rhi) noexcept nogil:
    """Updates rows rlo..rhi of a block column in place; ``col`` points at row rhi.

    Descending order keeps ``qq[r]`` at the previous column's value when row r reads it. Returns
    the decision bits of the column (bit r set: the maximum came from the previous token).
    """
    cdef unsigned int word = 0
    cdef real left, upv
    cdef int r = rhi
    while r >= rlo:
        left = qq[r + 1]
        upv = qq[r]
        word |= (<unsigned int>(upv > left)) << r
        qq[r + 1] = col[0] + (upv if upv > left else left)
        col -= rs
        r -= 1
    return word


cdef inline void _full_columns(const real* v, Py_ssize_t rs, Py_ssize_t cs, int j0, int j1,
                               real* qq, const real* up, real* nxt, uint16_t* bits) noexcept nogil:
    """Columns j0..j1-1 of a block whose R rows all lie in the band: the hot loop.

    The constant trip count lets the compiler unroll the rows and keep the column in registers.
    """
    cdef real q[R + 1]
    cdef real left, upv
    cdef unsigned int word
    cdef int r, j
    cdef const real* col
    for r in range(R + 1):
        q[r] = qq[r]
    for j in range(j0, j1):
        q[0] = up[j]
        col = v + (R - 1) * rs + j * cs
        word = 0
        for r in range(R - 1, -1, -1):
            left = q[r + 1]
            upv = q[r]
            word |= (<unsigned int>(upv > left)) << r
            q[r + 1] = col[0] + (upv if upv > left else left)
            col -= rs
        bits[j] = <uint16_t>word
        nxt[j + 1] = q[R]
    for r in range(R + 1):
        qq[r] = q[r]


cdef inline void _forward(const real* v, Py_ssize_t rs, Py_ssize_t cs, int T, int F,
                          uint16_t* bits, real* up, real* nxt) noexcept nogil:
    """Runs the DP on the band and stores one decision bit per cell.

    Bit ``r`` of ``bits[blk * F + j]`` is set when cell (blk * R + r, j) takes its maximum from the
    previous token (``Q[i-1, j-1] > Q[i, j-1]``, strictly: ties stay on the same token).
    ``up[j + 1]`` holds ``Q[i0 - 1, j]`` of the row above the block, ``nxt`` receives the block's
    bottom row.
    """
    cdef int D = F - T
    cdef int i0, n, j, r, rlo, rhi, jend, jfull
    cdef real qq[R + 1]  # qq[0]: Q[i0-1, j-1]; qq[r+1]: Q[i0+r, j-1]
    cdef real* tmp
    cdef uint16_t* bb
    cdef real neg = -INFINITY

    # Row -1: Q[-1, -1] = 0 makes Q[0, 0] = v[0, 0]; every other cell above row 0 is -inf.
    up[0] = 0
    for j in range(1, D + 2):
        up[j] = neg
    i0 = 0
    while i0 < T:
        n = T - i0 if T - i0 < R else R
        bb = bits + (i0 // R) * F
        for r in range(1, n + 1):
            qq[r] = neg  # Q[i, i-1] = -inf: a token cannot start before its own index
        jend = i0 + n - 1 + D
        j = i0
        while j <= jend:
            if n == R and j == i0 + R - 1 and j <= i0 + D:  # all rows in the band from here
                jfull = i0 + D + 1
                _full_columns(v + i0 * rs, rs, cs, j, jfull, qq, up, nxt, bb)
                j = jfull
                continue
            rlo = j - D - i0 if j - D - i0 > 0 else 0
            rhi = j - i0 if j - i0 < n - 1 else n - 1
            if rlo == 0:
                qq[0] = up[j]
            bb[j] = <uint16_t>_column(v + (i0 + rhi) * rs + j * cs, rs, qq, rlo, rhi)
            if rhi == n - 1:
                nxt[j + 1] = qq[n]
            j += 1
        tmp = up
        up = nxt
        nxt = tmp
        i0 += R


cdef inline void _backtrack(const uint16_t* bits, int T, int F, int* start) noexcept nogil:
    """Follows the decisions from (T-1, F-1); ``start[i]`` = first frame of token i."""
    cdef int i = T - 1
    cdef int j = F - 1
    while j > 0 and i != j:
        if i != 0 and (bits[(i // R) * F + j] >> (i % R)) & 1:
            start[i] = j
            i -= 1
        j -= 1
    while i >= 0:  # forced diagonal (i == j) down to (0, 0)
        start[i] = i
        i -= 1
    start[T] = F


cdef inline void _write(real* out, int Tp, int Fp, int T, const int* start) noexcept nogil:
    """Writes one item's (Tp, Fp) output rows exactly once."""
    cdef int i, j, s, e
    cdef real* row
    for i in range(T):
        row = out + <Py_ssize_t>i * Fp
        s = start[i]
        e = start[i + 1]
        memset(row, 0, s * sizeof(real))
        for j in range(s, e):
            row[j] = 1
        memset(row + e, 0, (Fp - e) * sizeof(real))
    if Tp > T:
        memset(out + <Py_ssize_t>T * Fp, 0, <Py_ssize_t>(Tp - T) * Fp * sizeof(real))


def maximum_path_c(const real[:, :, :] value, real[:, :, ::1] out,
                   const int[::1] t_text, const int[::1] t_feats, const int[::1] order,
                   int num_threads=0):
    """Monotonic alignment search over a batch, in place into ``out``.

    Args:
        value: (B, T_text, T_feats) float32/float64 scores, any strides; only the band of each
            item is read (padding may hold anything, NaN and inf included).
        out: (B, T_text, T_feats) C-contiguous, same dtype; fully overwritten with the 0/1 path.
        t_text: (B,) int32 valid tokens per item.
        t_feats: (B,) int32 valid frames per item; ``t_feats >= t_text`` (checked by the caller).
        order: (B,) int32 permutation of the items, most expensive first.
        num_threads: OpenMP threads; 0 for the OpenMP default.
    """
    cdef Py_ssize_t B = value.shape[0]
    cdef int Tp = value.shape[1]
    cdef int Fp = value.shape[2]
    cdef Py_ssize_t bs = value.strides[0] // sizeof(real)
    cdef Py_ssize_t rs = value.strides[1] // sizeof(real)
    cdef Py_ssize_t cs = value.strides[2] // sizeof(real)
    cdef Py_ssize_t k, b
    cdef int T, F, nblk, err = 0
    cdef int* errp = &err
    cdef char* scratch
    cdef real* rowbuf
    cdef uint16_t* bits
    cdef int* start
    cdef const real* vbase
    cdef real* obase
    cdef size_t nbytes
    if B == 0:
        return
    if out.shape[0] != B or out.shape[1] != Tp or out.shape[2] != Fp:
        raise ValueError("out must have the shape of value")
    if t_text.shape[0] != B or t_feats.shape[0] != B or order.shape[0] != B:
        raise ValueError("t_text, t_feats and order must have length B")
    if Tp == 0 or Fp == 0:
        return
    if num_threads <= 0:
        num_threads = mas_max_threads()
    if num_threads > B:
        num_threads = <int>B
    vbase = &value[0, 0, 0]
    obase = &out[0, 0, 0]
    nblk = (Tp + R - 1) // R
    nbytes = (2 * (<size_t>Fp + 1) * sizeof(real) + <size_t>nblk * Fp * sizeof(uint16_t)
              + (<size_t>Tp + 1) * sizeof(int))
    with nogil, parallel(num_threads=num_threads):
        scratch = <char*>malloc(nbytes)
        if scratch == NULL:
            errp[0] = 1
        rowbuf = <real*>scratch
        bits = <uint16_t*>(scratch + 2 * (<size_t>Fp + 1) * sizeof(real))
        start = <int*>(scratch + 2 * (<size_t>Fp + 1) * sizeof(real)
                       + <size_t>nblk * Fp * sizeof(uint16_t))
        for k in prange(B, schedule="dynamic"):
            b = order[k]
            T = t_text[b]
            F = t_feats[b]
            if scratch == NULL:
                continue
            if T <= 0 or F <= 0 or T > Tp or F > Fp or F < T:
                memset(obase + b * Tp * Fp, 0, <size_t>Tp * Fp * sizeof(real))
                continue
            _forward(vbase + b * bs, rs, cs, T, F, bits, rowbuf, rowbuf + Fp + 1)
            _backtrack(bits, T, F, start)
            _write(obase + b * Tp * Fp, Tp, Fp, T, start)
        free(scratch)
    if err:
        raise MemoryError("maximum_path: could not allocate scratch memory")
