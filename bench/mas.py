"""Benchmark of Monotonic Alignment Search and its value matrix against published packages.

All implementations run in this process on the same random inputs (each in its own layout,
prepared outside the timed region), and every peer's path is checked against ours.

Peers: monotonic-alignment-search, ilt-monotonic-align, monotonic-align, masearch (installed on
demand into bench/results/peers/ with ``--install-peers``; two of them share the module name
``monotonic_align``, so each gets its own folder) and ESPnet's
``espnet2.gan_tts.vits.monotonic_align.maximum_path`` (layout (B, T_feats, T_text)), plus
ESPnet's VITS Cython core compiled here with ``--install-peers`` when the wheel ships only the
.pyx. A peer that does not install or import is skipped with a note.

Usage:
    python bench/mas.py [--install-peers] [--repeat 30] [--no-model] [--quick]
"""

import argparse
import contextlib
import importlib
import math
import os
import subprocess
import sys
import sysconfig
import time

import numpy as np
import torch

from espnet_glowtts import mas
from espnet_glowtts.mas import search

PEER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "peers")
PEER_PACKAGES = {  # pip name -> (module, function, layout)
    "monotonic-alignment-search": (
        "monotonic_alignment_search",
        "maximum_path_cython",
        "TF",
    ),
    "ilt-monotonic-align": ("monotonic_align", "maximum_path", "TF"),
    "monotonic-align": ("monotonic_align", "maximum_path", "TF"),
    "masearch": ("masearch", "maximum_path", "FT"),
}


# ----------------------------------------------------------------------------- peers


def install_peers():
    for name in PEER_PACKAGES:
        target = os.path.join(PEER_DIR, name)
        if os.path.isdir(target):
            continue
        print(f"installing {name} into {target} ...", flush=True)
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--target",
                target,
                name,
            ],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            last = [ln for ln in r.stderr.splitlines() if "rror" in ln][-1:] or ["?"]
            print(f"  {name} did not install: {last[0].strip()}")
            os.makedirs(target + ".failed", exist_ok=True)
            subprocess.run(["rm", "-rf", target])
    _build_espnet_vits_core()


def _build_espnet_vits_core():
    """Compiles the VITS Cython core that ESPnet ships as a .pyx (serial, no OpenMP flags)."""
    import espnet2.gan_tts.vits.monotonic_align as vits

    target = os.path.join(PEER_DIR, "espnet-vits-core")
    if os.path.isdir(target):
        return
    os.makedirs(target)
    src = os.path.join(os.path.dirname(vits.__file__), "core.pyx")
    code = (
        f"from setuptools import setup, Extension\nfrom Cython.Build import cythonize\n"
        f"import numpy\nsetup(ext_modules=cythonize([Extension('espnet_vits_core', "
        f"[{src!r}], include_dirs=[numpy.get_include()])]), script_args=['build_ext', "
        f"'--build-lib', {target!r}, '--build-temp', {target + '/tmp'!r}])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if r.returncode != 0:
        print("  ESPnet's VITS core did not build:", r.stderr.strip().splitlines()[-1:])


@contextlib.contextmanager
def _isolated_import(path, top):
    """Imports package `top` from `path` only, then forgets it (two peers share a name)."""
    saved = {
        k: v for k, v in sys.modules.items() if k == top or k.startswith(top + ".")
    }
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, path)
    try:
        yield
    finally:
        sys.path.remove(path)
        for k in [k for k in sys.modules if k == top or k.startswith(top + ".")]:
            del sys.modules[k]
        sys.modules.update(saved)


def load_peers():
    """Returns {label: (fn(value_TF, value_FT, mask_TF, mask_FT) -> path (B, T, F), cores)}."""
    peers, notes = {}, []
    for name, (module, fn_name, layout) in PEER_PACKAGES.items():
        path = os.path.join(PEER_DIR, name)
        if not os.path.isdir(path):
            why = (
                "did not install from PyPI here"
                if os.path.isdir(path + ".failed")
                else "not installed (run with --install-peers)"
            )
            notes.append(f"{name}: skipped, {why}")
            continue
        try:
            with _isolated_import(path, module):
                fn = getattr(importlib.import_module(module), fn_name)
        except Exception as e:  # noqa: BLE001 - any import failure means "skip"
            notes.append(f"{name}: skipped, import failed ({e})")
            continue
        peers[name] = (_wrap(fn, layout), 1)
    try:
        from espnet2.gan_tts.vits import monotonic_align as vits

        kind = "cython" if vits.is_cython_avalable else f"numba-parallel"
        cores = 1 if vits.is_cython_avalable else _numba_threads()
        peers[f"espnet2 vits ({kind})"] = (_wrap(vits.maximum_path, "FT"), cores)
    except Exception as e:  # noqa: BLE001
        notes.append(f"espnet2.gan_tts.vits.monotonic_align: skipped ({e})")
    core_dir = os.path.join(PEER_DIR, "espnet-vits-core")
    if os.path.isdir(core_dir) and any(
        f.startswith("espnet_vits_core") for f in os.listdir(core_dir)
    ):
        with _isolated_import(core_dir, "espnet_vits_core"):
            core = importlib.import_module("espnet_vits_core")
        peers["espnet2 vits core (cython)"] = (
            _wrap(_espnet_cython(core.maximum_path_c), "FT"),
            1,
        )
    return peers, notes


def _numba_threads():
    try:
        import numba

        return numba.get_num_threads()
    except Exception:  # noqa: BLE001
        return 1


def _espnet_cython(maximum_path_c):
    """ESPnet's `maximum_path` wrapper around its compiled core (same casts and copies)."""

    def fn(neg_x_ent, attn_mask):
        device, dtype = neg_x_ent.device, neg_x_ent.dtype
        neg_x_ent = neg_x_ent.cpu().numpy().astype(np.float32)
        path = np.zeros(neg_x_ent.shape, dtype=np.int32)
        t_t_max = attn_mask.sum(1)[:, 0].cpu().numpy().astype(np.int32)
        t_s_max = attn_mask.sum(2)[:, 0].cpu().numpy().astype(np.int32)
        maximum_path_c(path, neg_x_ent, t_t_max, t_s_max)
        return torch.from_numpy(path).to(device=device, dtype=dtype)

    return fn


def _wrap(fn, layout):
    if layout == "TF":
        return lambda vt, vf, mt, mf: fn(vt, mt)
    return lambda vt, vf, mt, mf: fn(
        vf, mf
    )  # returns (B, F, T): compared after transposing


# ----------------------------------------------------------------------------- inputs


def make_inputs(B, max_text, max_feats, seed=0, ratio=(3.8, 5.6), min_text=None):
    """Random log-likelihood-like scores with mixed lengths; item 0 has the maximal lengths."""
    g = torch.Generator().manual_seed(seed)
    min_text = min_text or max(1, max_text // 4)
    t_text = torch.randint(min_text, max_text + 1, (B,), generator=g)
    r = torch.empty(B).uniform_(*ratio, generator=g)
    t_feats = torch.minimum((t_text * r).long(), torch.tensor(max_feats)).clamp(
        min=t_text
    )
    t_text[0], t_feats[0] = max_text, max_feats
    value = torch.randn(B, max_text, max_feats, generator=g) - 50.0
    mask = (
        (torch.arange(max_text)[None, :, None] < t_text[:, None, None])
        & (torch.arange(max_feats)[None, None, :] < t_feats[:, None, None])
    ).float()
    return value, mask, t_text, t_feats


def timeit(fn, repeat, warmup=3):
    """(median, min) wall time in ms. On a shared machine the minimum is the steadier figure."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3, float(np.min(times)) * 1e3


def bandwidth_floor_ms(value, band_cells, repeat):
    """Time to read the band once and write the path once, at this machine's best measured
    bandwidth in the same cache state: reading = sum over `value` (torch, all threads, or numpy),
    writing = filling a reused output-sized buffer (numpy, one thread, or torch, all threads).
    """
    out = np.empty(value.shape, np.float32)
    v_np = value.numpy()
    read_ms = min(
        timeit(lambda: value.sum(), repeat)[1], timeit(lambda: v_np.sum(), repeat)[1]
    )
    write_ms = min(
        timeit(lambda: out.fill(0.0), repeat)[1],
        timeit(lambda: torch.from_numpy(out).fill_(0.0), repeat)[1],
    )
    read_gbs = value.numel() * 4 / read_ms / 1e6
    write_gbs = out.size * 4 / write_ms / 1e6
    return band_cells * 4 / read_gbs / 1e6 + write_ms, read_gbs, write_gbs


# ----------------------------------------------------------------------------- MAS


def bench_shape(label, B, max_text, max_feats, peers, repeat, rows):
    value, mask, t_text, t_feats = make_inputs(B, max_text, max_feats)
    value_ft, mask_ft = (
        value.transpose(1, 2).contiguous(),
        mask.transpose(1, 2).contiguous(),
    )
    valid = int((t_text * t_feats).sum())
    band = int((t_text * (t_feats - t_text + 1)).sum())
    ours = mas.maximum_path(value, mask)
    t_ours = timeit(lambda: mas.maximum_path(value, mask), repeat)
    core = search.default.core
    threads = search.default.threads() if core is not None else torch.get_num_threads()
    load = os.getloadavg()[0]
    results = [
        ("espnet_glowtts.mas", t_ours, threads, f"threads chosen at load {load:.1f}")
    ]
    n_max = core.openmp_threads() if core is not None else 1
    for n in sorted({1, n_max}):
        t_n = timeit(lambda: mas.maximum_path(value, mask, num_threads=n), repeat)
        results.append(
            (f"espnet_glowtts.mas, {n} thread(s)", t_n, n, "(forced; not a peer)")
        )
    for name, (fn, cores) in peers.items():
        try:
            path = fn(value, value_ft, mask, mask_ft)
        except Exception as e:  # noqa: BLE001
            results.append((name, (float("nan"),) * 2, cores, f"failed: {e}"))
            continue
        if path.shape != value.shape:
            path = path.transpose(1, 2)
        same = torch.equal(path.float(), ours.float())
        del path
        t = timeit(lambda: fn(value, value_ft, mask, mask_ft), max(3, repeat // 3))
        results.append((name, t, cores, "same path" if same else "PATH DIFFERS"))
    peer_t = [
        r[1]
        for r in results[1:]
        if not math.isnan(r[1][0]) and "not a peer" not in r[3]
    ]
    best_med = min((t[0] for t in peer_t), default=float("nan"))
    best_min = min((t[1] for t in peer_t), default=float("nan"))
    floor, rbw, wbw = bandwidth_floor_ms(value, band, repeat)
    print(
        f"\n## {label}: B={B}, T_text<={max_text}, T_mel<={max_feats}; valid cells {valid:,}, "
        f"band cells {band:,}, output {value.numel() * 4 / 1e6:.1f} MB"
    )
    print(
        f"{'implementation':30s} {'median ms':>10s} {'min ms':>8s} {'ns/valid cell':>14s} "
        f"{'cores':>6s}  note"
    )
    for name, (med, mn), cores, note in results:
        print(
            f"{name:30s} {med:10.2f} {mn:8.2f} {med * 1e6 / valid:14.3f} {cores:6d}  {note}"
        )
    print(
        f"speed-up over the best peer: {best_med / t_ours[0]:.1f}x (medians), "
        f"{best_min / t_ours[1]:.1f}x (minima)"
    )
    print(
        f"memory-traffic floor (band read at {rbw:.1f} GB/s + path write at {wbw:.1f} GB/s): "
        f"{floor:.2f} ms; ours (min) = {t_ours[1] / floor:.2f}x the floor"
    )
    rows.append((label, t_ours, best_med, floor))


def bench_sweep(peers, repeat):
    print("\n## scaling over T_mel (B=32, T_text <= T_mel/4.8, mixed lengths)")
    fastest = {n: peers[n] for n in list(peers) if "masearch" in n or "vits core" in n}
    print(
        f"{'T_mel':>6s} {'ours ms':>9s} {'ns/valid cell':>14s} "
        + " ".join(f"{n[:24]:>24s}" for n in fastest)
    )
    for max_feats in (250, 500, 1000, 2000, 4000):
        max_text = int(max_feats / 4.8)
        value, mask, t_text, t_feats = make_inputs(32, max_text, max_feats, seed=1)
        vft, mft = value.transpose(1, 2).contiguous(), mask.transpose(1, 2).contiguous()
        valid = int((t_text * t_feats).sum())
        ms = timeit(lambda: mas.maximum_path(value, mask), repeat)[0]
        peer_ms = [
            timeit(lambda: fn(value, vft, mask, mft), max(3, repeat // 4))[0]
            for fn, _ in fastest.values()
        ]
        print(
            f"{max_feats:6d} {ms:9.2f} {ms * 1e6 / valid:14.3f} "
            + " ".join(f"{p:24.2f}" for p in peer_ms)
            + "   (medians, ms)"
        )


# ----------------------------------------------------------------------------- value matrix


def plain_torch_value(z, mean, log_std):
    """The usual four-term torch expression (authors' training code), for comparison."""
    prec = torch.exp(-2 * log_std)
    t1 = torch.sum(-0.5 * math.log(2 * math.pi) - log_std, [1]).unsqueeze(-1)
    t2 = torch.matmul(prec.transpose(1, 2), -0.5 * (z**2))
    t3 = torch.matmul((mean * prec).transpose(1, 2), z)
    t4 = torch.sum(-0.5 * (mean**2) * prec, [1]).unsqueeze(-1)
    return t1 + t2 + t3 + t4


def bench_value_matrix(repeat):
    g = torch.Generator().manual_seed(0)
    B, C, T, F = 32, 80, 180, 870
    z = torch.randn(B, C, F, generator=g)
    mean = torch.randn(B, C, T, generator=g)
    log_std = torch.randn(B, C, T, generator=g) * 0.2
    with torch.no_grad():
        ours = timeit(lambda: mas.log_likelihood(z, mean, log_std), repeat)
        plain = timeit(lambda: plain_torch_value(z, mean, log_std), repeat)
    gflop = 2 * B * T * F * (2 * C + 1) / 1e9
    print(
        f"\n## value matrix B={B}, C={C}, T_text={T}, T_mel={F} ({gflop:.2f} GFLOP), "
        f"torch threads {torch.get_num_threads()}; median / min ms"
    )
    print(
        f"mas.log_likelihood (one bmm): {ours[0]:.1f} / {ours[1]:.1f} "
        f"({gflop / ours[1] * 1e3:.0f} GFLOP/s at the min);  plain torch four terms: "
        f"{plain[0]:.1f} / {plain[1]:.1f}"
    )
    return ours[0]


# ----------------------------------------------------------------------------- training step


def bench_training_step(steps, batch):
    try:
        from espnet_glowtts.glow_tts import GlowTTS

        model = GlowTTS(idim=60, odim=80)
    except Exception as e:  # noqa: BLE001
        print(
            f"\n## training step: skipped, the model does not import/build yet ({e!r})"
        )
        return
    _, _, t_text, t_feats = make_inputs(batch, 180, 870, seed=2)
    # The model inserts blanks (2 T + 1 tokens), so keep text short enough for the frames.
    t_text = torch.minimum(t_text, (t_feats // 2 - 1) // 2)
    t_text[0] = int(t_text.max())
    g = torch.Generator().manual_seed(0)
    text = torch.randint(2, 59, (batch, int(t_text.max())), generator=g)
    feats = torch.randn(batch, int(t_feats.max()), 80, generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    spent = {"log_likelihood": 0.0, "maximum_path": 0.0}
    import espnet_glowtts.glow_tts as gt

    def timed(name, fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            out = fn(*a, **k)
            spent[name] += time.perf_counter() - t0
            return out

        return wrapper

    orig = gt.log_likelihood, gt.maximum_path
    gt.log_likelihood = timed("log_likelihood", orig[0])
    gt.maximum_path = timed("maximum_path", orig[1])
    try:
        times = []
        for i in range(steps + 1):
            for k in spent:
                spent[k] = 0.0 if i == 1 else spent[k]
            t0 = time.perf_counter()
            loss = model(
                text=text, text_lengths=t_text, feats=feats, feats_lengths=t_feats
            )[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i > 0:
                times.append(time.perf_counter() - t0)
    finally:
        gt.log_likelihood, gt.maximum_path = orig
    step_ms = float(np.mean(times)) * 1e3
    ll_ms = spent["log_likelihood"] * 1e3 / steps
    mp_ms = spent["maximum_path"] * 1e3 / steps
    print(
        f"\n## default GlowTTS(idim=60, odim=80) training step on CPU, B={batch} of the LJSpeech "
        f"length mix (T_text<=180 before blanks, T_mel<=870) "
        f"({steps} steps after one warm-up)"
    )
    print(
        f"step {step_ms:.0f} ms; value matrix {ll_ms:.1f} ms + MAS {mp_ms:.1f} ms = "
        f"{100 * (ll_ms + mp_ms) / step_ms:.2f}% of the step"
    )


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--install-peers", action="store_true")
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument(
        "--no-model", action="store_true", help="skip the training-step share"
    )
    p.add_argument("--steps", type=int, default=2, help="training steps timed")
    p.add_argument(
        "--step-batch",
        type=int,
        default=8,
        help="batch of the timed training step (B=32 needs > 12 GB on the CPU; the "
        "share is nearly independent of B since both parts scale with it)",
    )
    p.add_argument(
        "--only-model", action="store_true", help="only the training-step share"
    )
    p.add_argument("--quick", action="store_true", help="LJSpeech shape only")
    args = p.parse_args()
    if args.install_peers:
        install_peers()
    print(
        f"MAS backend: {mas.backend()}; cores: {os.cpu_count()}; torch threads: "
        f"{torch.get_num_threads()}; python {sysconfig.get_python_version()}, torch "
        f"{torch.__version__}"
    )
    if args.only_model:
        bench_training_step(args.steps, args.step_batch)
        return
    peers, notes = load_peers()
    for n in notes:
        print("note:", n)
    rows = []
    bench_shape("LJSpeech batch", 32, 180, 870, peers, args.repeat, rows)
    if not args.quick:
        bench_shape("long-form", 64, 400, 2000, peers, max(5, args.repeat // 3), rows)
        bench_sweep(peers, max(5, args.repeat // 3))
    bench_value_matrix(max(5, args.repeat // 3))
    if not args.no_model:
        bench_training_step(args.steps, args.step_batch)


if __name__ == "__main__":
    main()
