# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# Copyright 2026 The espnet-glowtts authors
#  Apache 2.0  (http://www.apache.org/licenses/LICENSE-2.0)

"""Monotonic Alignment Search: the compiled CPU core.

The DP of Glow-TTS, ``Q[i, j] = v[i, j] + max(Q[i, j-1], Q[i-1, j-1])``, is run only on the band
of cells that can lie on a monotonic path from (0, 0) to (T-1, F-1): ``j - (F - T) <= i <= j``.

Layout of the work for one item (T tokens, F frames):

* Rows are processed in blocks of ``R`` = 16 tokens (then one block of a multiple of 4 and one
  of the last 0-3 tokens). Inside a block the frames are swept left to right; each frame updates
  the block's cells (one column of the block), which depend only on the previous column, so the
  updates are independent (no serial dependency chain). Each row of the value matrix is read as
  its own contiguous stream, which hardware prefetchers follow; the running column stays in
  registers or a small stack array.
* Where all rows of a block are in the band, float32 inputs run 4 frames at a time with SSE on
  transposed 4x4 tiles (same arithmetic as the scalar loop, so identical paths).
* The bottom row of a block is handed to the next block through a row buffer.
* The backtracking decision of each cell is one bit (one 16-bit word per block column), so the
  scratch memory per item is about ``T * F / 8`` bytes and stays in L1/L2.
* Backtracking yields the first frame of every token; the output is then written once (zero
  spans and one run of ones per token), with non-temporal stores for outputs larger than
  ``STREAM_BYTES`` (no read-for-ownership of lines that are only overwritten).

Items are distributed over OpenMP threads (largest first, dynamic schedule) with the GIL
released. Value may have any strides (the caller's memory is read in place).

Paper: Kim et al., "Glow-TTS: A Generative Flow for Text-to-Speech via Monotonic
Alignment Search", NeurIPS 2020. Semantics and tie-breaking of the authors'
``monotonic_align/core.pyx`` (github.com/jaywalnut310/glow-tts).
"""

from cython.parallel cimport parallel, prange
from libc.stdint cimport uint16_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset


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

cdef extern from *:
    """
    /* float32 hot loop with SSE: 16 rows = 4 vectors of 4 rows. A 4x4 tile (4 rows x 4 frames)
       is loaded row-wise and transposed, so each frame's column is one vector; the "previous
       token" operand is the column shifted down one lane. Same operations as the scalar loop:
       maxps(up, left) is (up > left ? up : left), then one add, so the results are identical. */
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #define MAS_SSE 1
    static inline __m128 mas_shift_in(__m128 above, __m128 cur) {
        /* [above[3], cur[0], cur[1], cur[2]] */
        __m128 t = _mm_shuffle_ps(above, cur, _MM_SHUFFLE(0, 0, 3, 3));
        return _mm_shuffle_ps(t, cur, _MM_SHUFFLE(2, 1, 2, 0));
    }
    /* Columns j0.. of a block of 4*ng rows (all in the band), 4 frames at a time; returns the
       first column left for the scalar loop. */
    static inline __attribute__((always_inline)) int mas_sse_columns(
            const float* v, Py_ssize_t rs, int j0, int j1, float* q, const float* up,
            float* nxt, unsigned short* bits, const int ng) {
        __m128 g[4], c[4][4];
        int j, k, b;
        for (b = 0; b < ng; b++) g[b] = _mm_loadu_ps(q + 1 + 4 * b);
        for (j = j0; j + 4 <= j1; j += 4) {
            for (b = 0; b < ng; b++) {
                const float* p = v + (Py_ssize_t)(4 * b) * rs + j;
                __m128 r0 = _mm_loadu_ps(p), r1 = _mm_loadu_ps(p + rs);
                __m128 r2 = _mm_loadu_ps(p + 2 * rs), r3 = _mm_loadu_ps(p + 3 * rs);
                _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                c[b][0] = r0; c[b][1] = r1; c[b][2] = r2; c[b][3] = r3;
            }
            for (k = 0; k < 4; k++) {
                unsigned int word = 0;
                for (b = ng - 1; b >= 0; b--) {
                    __m128 upv = mas_shift_in(b ? g[b - 1] : _mm_set1_ps(up[j + k]), g[b]);
                    word |= (unsigned int)_mm_movemask_ps(_mm_cmpgt_ps(upv, g[b])) << (4 * b);
                    g[b] = _mm_add_ps(c[b][k], _mm_max_ps(upv, g[b]));
                }
                bits[j + k] = (unsigned short)word;
                nxt[j + k + 1] = _mm_cvtss_f32(
                    _mm_shuffle_ps(g[ng - 1], g[ng - 1], _MM_SHUFFLE(3, 3, 3, 3)));
            }
        }
        for (b = 0; b < ng; b++) _mm_storeu_ps(q + 1 + 4 * b, g[b]);
        return j;
    }
    static int mas_full_columns_sse(const float* v, Py_ssize_t rs, int j0, int j1, float* q,
                                    const float* up, float* nxt, unsigned short* bits, int n) {
        switch (n) {  /* one specialised copy per block height */
            case 16: return mas_sse_columns(v, rs, j0, j1, q, up, nxt, bits, 4);
            case 12: return mas_sse_columns(v, rs, j0, j1, q, up, nxt, bits, 3);
            case 8: return mas_sse_columns(v, rs, j0, j1, q, up, nxt, bits, 2);
            case 4: return mas_sse_columns(v, rs, j0, j1, q, up, nxt, bits, 1);
            default: return j0;
        }
    }
    /* Zeroes n bytes; with `stream`, the aligned middle uses non-temporal stores, which skip
       reading the lines first (half the memory traffic for outputs larger than the cache). */
    static void mas_zero(void* p, size_t n, int stream) {
        char* c = (char*)p;
        size_t head;
        if (!stream || n < 64) { memset(c, 0, n); return; }
        head = (16 - ((size_t)c & 15)) & 15;
        memset(c, 0, head);
        c += head; n -= head;
        for (; n >= 16; c += 16, n -= 16) _mm_stream_si128((__m128i*)c, _mm_setzero_si128());
        memset(c, 0, n);
    }
    static void mas_fence(void) { _mm_sfence(); }
    #else
    #define MAS_SSE 0
    static void mas_zero(void* p, size_t n, int stream) { memset(p, 0, n); }
    static void mas_fence(void) {}
    static int mas_full_columns_sse(const float* v, Py_ssize_t rs, int j0, int j1, float* q,
                                    const float* up, float* nxt, unsigned short* bits, int n) {
        return j0;
    }
    #endif
    """
    int MAS_SSE
    void mas_zero(void* p, size_t n, int stream) noexcept nogil
    void mas_fence() noexcept nogil
    int mas_full_columns_sse(const float* v, Py_ssize_t rs, int j0, int j1, float* q,
                             const float* up, float* nxt, uint16_t* bits, int n) noexcept nogil

ctypedef fused real:
    float
    double

STREAM_BYTES = 64 << 20  # outputs above this are written around the caches

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


cdef inline void _full_columns(const real* v, Py_ssize_t rs, Py_ssize_t cs, int n, int j0,
                               int j1, real* qq, const real* up, real* nxt,
                               uint16_t* bits) noexcept nogil:
    """Columns j0..j1-1 of a block whose n rows all lie in the band: the hot loop.

    float32 with unit frame stride runs 4 frames at a time in SSE (blocks of 4, 8, 12, 16 rows);
    the rest runs the scalar loop, unrolled over the rows for full blocks of R rows.
    """
    cdef real q[R + 1]
    cdef real left, upv
    cdef unsigned int word
    cdef int r, j
    cdef const real* col
    if real is float:
        if MAS_SSE and cs == 1:
            j0 = mas_full_columns_sse(v, rs, j0, j1, qq, up, nxt, bits, n)
    if n != R:
        for j in range(j0, j1):
            qq[0] = up[j]
            bits[j] = <uint16_t>_column(v + (n - 1) * rs + j * cs, rs, qq, 0, n - 1)
            nxt[j + 1] = qq[n]
        return
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


cdef inline int _block_rows(int i0, int T) noexcept nogil:
    """Height of the block starting at row i0: R rows, then a multiple of 4, then the rest."""
    cdef int left = T - i0
    if left >= R:
        return R
    if left >= 4:
        return left - left % 4
    return left


cdef inline void _forward(const real* v, Py_ssize_t rs, Py_ssize_t cs, int T, int F,
                          uint16_t* bits, real* up, real* nxt) noexcept nogil:
    """Runs the DP on the band and stores one decision bit per cell.

    Block k (rows i0..i0+n-1, heights from :func:`_block_rows`) keeps its decisions in
    ``bits[k * F + j]``: bit r is set when cell (i0 + r, j) takes its maximum from the previous
    token (``Q[i-1, j-1] > Q[i, j-1]``, strictly: ties stay on the same token).
    ``up[j + 1]`` holds ``Q[i0 - 1, j]`` of the row above the block, ``nxt`` receives the block's
    bottom row.
    """
    cdef int D = F - T
    cdef int i0, n, j, r, rlo, rhi, jend, jfull
    cdef real qq[R + 1]  # qq[0]: Q[i0-1, j-1]; qq[r+1]: Q[i0+r, j-1]
    cdef real* tmp
    cdef uint16_t* bb = bits
    cdef real neg = -INFINITY

    # Row -1: Q[-1, -1] = 0 makes Q[0, 0] = v[0, 0]; every other cell above row 0 is -inf.
    up[0] = 0
    for j in range(1, D + 2):
        up[j] = neg
    i0 = 0
    while i0 < T:
        n = _block_rows(i0, T)
        for r in range(1, n + 1):
            qq[r] = neg  # Q[i, i-1] = -inf: a token cannot start before its own index
        jend = i0 + n - 1 + D
        j = i0
        while j <= jend:
            if j == i0 + n - 1 and j <= i0 + D:  # from here on all rows are in the band
                jfull = i0 + D + 1
                _full_columns(v + i0 * rs, rs, cs, n, j, jfull, qq, up, nxt, bb)
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
        i0 += n
        bb += F


cdef inline int _block_start(int i, int T) noexcept nogil:
    """First row of the block that holds row i (see :func:`_block_rows`)."""
    cdef int full = T - T % R  # rows covered by blocks of R
    cdef int n4 = (T - full) - (T - full) % 4
    if i < full:
        return i - i % R
    return full if i < full + n4 else full + n4


cdef inline void _backtrack(const uint16_t* bits, int T, int F, int* start) noexcept nogil:
    """Follows the decisions from (T-1, F-1); ``start[i]`` = first frame of token i."""
    cdef int i = T - 1
    cdef int j = F - 1
    cdef int i0 = _block_start(i, T)
    cdef int nblocks = 0
    cdef int k = 0
    while k < T:  # number of blocks
        k += _block_rows(k, T)
        nblocks += 1
    cdef const uint16_t* bb = bits + <Py_ssize_t>(nblocks - 1) * F
    while j > 0 and i != j:
        if i != 0 and (bb[j] >> (i - i0)) & 1:
            start[i] = j
            i -= 1
            if i < i0:
                i0 = _block_start(i, T)
                bb -= F
        j -= 1
    while i >= 0:  # forced diagonal (i == j) down to (0, 0)
        start[i] = i
        i -= 1
    start[T] = F


cdef inline void _write(real* out, int Tp, int Fp, int T, const int* start,
                        int stream) noexcept nogil:
    """Writes one item's (Tp, Fp) output exactly once: zero spans and one run of ones per row."""
    cdef Py_ssize_t pos = 0
    cdef Py_ssize_t s, e, j
    cdef int i
    for i in range(T):
        s = <Py_ssize_t>i * Fp + start[i]
        e = <Py_ssize_t>i * Fp + start[i + 1]
        mas_zero(out + pos, (s - pos) * sizeof(real), stream)
        for j in range(s, e):
            out[j] = 1
        pos = e
    mas_zero(out + pos, (<Py_ssize_t>Tp * Fp - pos) * sizeof(real), stream)
    if stream:
        mas_fence()


def maximum_path_c(const real[:, :, :] value, real[:, :, ::1] out,
                   const int[::1] t_text, const int[::1] t_feats, const int[::1] order,
                   int num_threads=0, int stream=-1):
    """Monotonic alignment search over a batch, in place into ``out``.

    Args:
        value: (B, T_text, T_feats) float32/float64 scores, any strides; only the band of each
            item is read (padding may hold anything, NaN and inf included).
        out: (B, T_text, T_feats) C-contiguous, same dtype; fully overwritten with the 0/1 path.
        t_text: (B,) int32 valid tokens per item.
        t_feats: (B,) int32 valid frames per item; ``t_feats >= t_text`` (checked by the caller).
        order: (B,) int32 permutation of the items, most expensive first.
        num_threads: OpenMP threads; 0 for the OpenMP default.
        stream: write the zeros with non-temporal stores (1), not (0), or when the output is
            larger than STREAM_BYTES (-1).
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
    if stream < 0:
        stream = B * Tp * Fp * sizeof(real) > STREAM_BYTES
    if num_threads <= 0:
        num_threads = mas_max_threads()
    if num_threads > B:
        num_threads = <int>B
    vbase = &value[0, 0, 0]
    obase = &out[0, 0, 0]
    nblk = Tp // R + 2  # blocks of R rows, then at most two shorter ones
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
                mas_zero(obase + b * Tp * Fp, <size_t>Tp * Fp * sizeof(real), stream)
                continue
            _forward(vbase + b * bs, rs, cs, T, F, bits, rowbuf, rowbuf + Fp + 1)
            _backtrack(bits, T, F, start)
            _write(obase + b * Tp * Fp, Tp, Fp, T, start, stream)
        free(scratch)
    if err:
        raise MemoryError("maximum_path: could not allocate scratch memory")
