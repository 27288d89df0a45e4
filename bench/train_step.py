#!/usr/bin/env python
"""Training step and inference of our Glow-TTS against Coqui TTS's GlowTTS (issue 13).

Both models are the paper's base configuration with random weights (ours: ``GlowTTS``
defaults; Coqui: ``GlowTTSConfig()`` defaults, coqui-tts 0.28, plus the paper's relative
attention window of 4, which its defaults leave out). They get the same work:

* **Training step** = forward, both losses (MLE + duration), backward, gradient clipping at
  5 and an Adam step, on the same batch: B utterances whose lengths follow LJSpeech's
  distribution (characters ~ N(100, 35) clipped to [20, 180], 4.8-6.4 frames per character,
  at most 870 frames; ``--batching sorted`` takes B neighbours of a length-sorted pool, as
  ESPnet's ``numel`` batches do). Our model inserts the blanks itself; Coqui's tokenizer
  does it, so Coqui gets the 2N+1 interspersed ids. Coqui's ActNorm data-dependent
  initialisation runs once before timing, ours in the untimed warm-up step.
* **Inference** of one utterance with forced durations (the same 2N+1 per-token durations
  for both; Coqui's duration output is replaced by ``log(d + 0.5)``, which its
  ``ceil(exp(x) - 1)`` turns back into d), noise scale 0.333.

Coqui lives in its own venv (``--install-peers`` creates it under bench/results/peers/).
Each implementation runs in its own worker process (its own venv) and they take turns step
by step with a rotating order, so the shared machine's load hits them alike; ratios come
from the same run. Times are medians with the [min, max] spread. Peak activation memory
is the peak of live tensor storage during forward + backward of one step (weights,
optimizer state and the optimizer's temporaries excluded, gradients included: both models
have about the same parameter count), traced as
``bench/inference_speed.py`` does; on CUDA ``torch.cuda.max_memory_allocated`` above the
memory held before the step.

Variants of ours (``--ours``): ``plain`` (defaults), ``memory_efficient``
(``memory_efficient_flows=True``), ``packed`` (``pack_flow_batch=True``) and both.

    python bench/train_step.py --install-peers          # creates Coqui's venv once
    python bench/train_step.py                          # B=8,16 x 1,2 threads + inference
    python bench/train_step.py --batch_sizes 8 16 32 --length_scales 0.5 1 --threads 2
    python bench/train_step.py --device cuda --amp none fp16 bf16   # on a GPU machine
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER_VENV = HERE / "results" / "peers" / "coqui-tts-venv"
PEER_REQUIREMENTS = [
    "coqui-tts[codec]==0.28.0",
    "six",
    "torch==2.11.0",
    "torchaudio==2.11.0",
]
VOCAB = 67  # Coqui takes num_chars from its default character set, whatever is passed
N_MELS = 80
MAX_FRAMES = 870


# ---------------------------------------------------------------------------------------
# Inputs (identical in every worker: same torch, same seeds)
def batch_lengths(batch_size, length_scale=1.0, batching="random", seed=0):
    """LJSpeech-like (tokens, frames) per utterance, longest first."""
    import random

    rng = random.Random(seed)
    pool = 4096 if batching == "sorted" else batch_size
    items = []
    for _ in range(pool):
        chars = min(180, max(20, round(rng.gauss(100, 35))))
        frames = min(MAX_FRAMES, round(chars * rng.uniform(4.8, 6.4)))
        items.append(
            (max(4, round(chars * length_scale)), max(8, round(frames * length_scale)))
        )
    if batching == "sorted":
        items.sort(key=lambda x: x[1])
        start = rng.randrange(0, pool - batch_size)
        items = items[start : start + batch_size]
    items.sort(key=lambda x: -x[1])
    return [t for t, _ in items], [f for _, f in items]


def make_batch(tokens, frames, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    b = len(tokens)
    text = torch.zeros(b, max(tokens), dtype=torch.long)
    for i, n in enumerate(tokens):
        text[i, :n] = torch.randint(1, VOCAB, (n,), generator=g)
    feats = torch.randn(b, max(frames), N_MELS, generator=g)
    for i, n in enumerate(frames):
        feats[i, n:] = 0.0
    return text, torch.tensor(tokens), feats, torch.tensor(frames)


def intersperse(text, lengths):
    """N tokens -> 2N+1 with blank id 0 between and around (what Coqui's tokenizer does)."""
    out = text.new_zeros(text.size(0), 2 * text.size(1) + 1)
    out[:, 1::2] = text
    return out, 2 * lengths + 1


def even_durations(num_tokens, num_frames):
    import torch

    edges = torch.div(
        torch.arange(num_tokens + 1) * num_frames, num_tokens, rounding_mode="floor"
    )
    return edges[1:] - edges[:-1]


# ---------------------------------------------------------------------------------------
# Implementations (inside a worker)
class Ours:
    def __init__(self, variant, device):
        import torch

        from espnet_glowtts import GlowTTS

        torch.manual_seed(0)
        kw = {option: True for option in VARIANTS.get(variant, ())}
        self.model = GlowTTS(idim=VOCAB, odim=N_MELS, **kw).to(device)
        if variant == "cuda_graphs":
            self.model.enable_cuda_graphs()

    def loss(self, text, text_lengths, feats, feats_lengths):
        return self.model(
            text=text,
            text_lengths=text_lengths,
            feats=feats,
            feats_lengths=feats_lengths,
        )[0]

    def infer(self, text, durations, noise_scale):
        return self.model.inference(text, durations=durations, noise_scale=noise_scale)[
            "feat_gen"
        ]


class Coqui:
    def __init__(self, variant, device):
        import torch
        from TTS.tts.configs.glow_tts_config import GlowTTSConfig
        from TTS.tts.models.glow_tts import GlowTTS

        torch.manual_seed(0)
        config = GlowTTSConfig()
        # Its default encoder_params leave the window out, which turns the relative
        # position attention off; the paper (and ours) use a window of 4.
        config.encoder_params["rel_attn_window_size"] = 4
        self._build = lambda: GlowTTS(config).to(device)
        self.model = self._build()
        self.criterion = self.model.get_criterion()
        self.forced = None
        self.initialized = False
        self.inference_model = None

    def loss(self, text, text_lengths, feats, feats_lengths):
        import torch

        text, text_lengths = intersperse(text, text_lengths)
        if (
            not self.initialized
        ):  # Coqui's data-dependent ActNorm init, as its train_step
            self.model.unlock_act_norm_layers()
            with torch.no_grad():
                self.model.forward(text, text_lengths, feats, feats_lengths)
            self.model.lock_act_norm_layers()
            self.initialized = True
        out = self.model.forward(text, text_lengths, feats, feats_lengths)
        with torch.autocast(feats.device.type, enabled=False):
            losses = self.criterion(
                out["z"].float(),
                out["y_mean"].float(),
                out["y_log_scale"].float(),
                out["logdet"].float(),
                feats_lengths,
                out["durations_log"].float(),
                out["total_durations_log"].float(),
                text_lengths,
            )
        return losses["loss"]

    def infer(self, text, durations, noise_scale):
        import torch

        if self.inference_model is None:
            # What Coqui's load_checkpoint(eval=True) does: inverse 1x1 weights stored,
            # weight norm removed (on a copy: the training model keeps its weight norm).
            self.inference_model = self._build().eval()
            self.inference_model.load_state_dict(self.model.state_dict())
            self.inference_model.store_inverse()
            encoder_forward = self.inference_model.encoder.forward

            def encoder(*args, **kwargs):
                o_mean, o_log_scale, o_dur_log, x_mask = encoder_forward(
                    *args, **kwargs
                )
                # forced durations: Coqui's ceil(exp(x) - 1) gives d back
                o_dur_log = torch.log(self.forced + 0.5).view_as(o_dur_log) * x_mask
                return o_mean, o_log_scale, o_dur_log, x_mask

            self.inference_model.encoder.forward = encoder
        text, lengths = intersperse(text[None], torch.tensor([text.numel()]))
        model = self.inference_model
        model.inference_noise_scale = noise_scale
        model.length_scale = 1.0
        self.forced = durations.float()[None, None].to(text.device)
        return model.inference(
            text.to(durations.device),
            aux_input={"x_lengths": lengths.to(durations.device)},
        )["model_outputs"][0]


IMPLS = {"ours": Ours, "coqui": Coqui}
VARIANTS = {  # our variants: GlowTTS options switched on
    "plain": (),
    "memory_efficient": ("memory_efficient_flows",),
    "packed": ("pack_flow_batch",),
    "packed+memory_efficient": ("pack_flow_batch", "memory_efficient_flows"),
}
# inference-only variants of ours (--infer_ours): the plain model, replayed as CUDA graphs
INFER_VARIANTS = ("plain", "cuda_graphs")


def _peak_tracker():
    sys.path.insert(0, str(HERE))
    from inference_speed import PeakTensorMemory

    return PeakTensorMemory()


def worker(device):
    """Reads one JSON command per line on stdin, answers one JSON line on stdout."""
    import logging
    import warnings

    import torch

    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    cuda = device.startswith("cuda")
    built, opts = {}, {}
    out = sys.stdout
    sys.stdout = sys.stderr  # library prints must not corrupt the protocol
    for line in sys.stdin:
        cmd = json.loads(line)
        torch.set_num_threads(cmd.get("threads", 1))
        key = (cmd["impl"], cmd["variant"])
        if key not in built:
            built[key] = IMPLS[cmd["impl"]](cmd["variant"], device)
            opts[key] = torch.optim.Adam(built[key].model.parameters(), lr=1e-4)
        impl, opt = built[key], opts[key]
        amp = cmd.get("amp", "none")
        autocast = torch.autocast(
            device.split(":")[0],
            enabled=amp != "none",
            dtype=torch.bfloat16 if amp == "bf16" else torch.float16,
        )
        scaler = torch.amp.GradScaler(enabled=amp == "fp16")
        result = {}
        if cmd["op"] in ("train", "train_mem"):
            batch = [t.to(device) for t in make_batch(cmd["tokens"], cmd["frames"])]
            impl.model.train()

            def forward_backward():
                opt.zero_grad(set_to_none=True)
                with autocast:
                    loss = impl.loss(*batch)
                scaler.scale(loss).backward()
                return float(loss)

            def step(tracker=None):
                if tracker is None:
                    loss = forward_backward()
                else:  # activations (and gradients), not the optimizer's temporaries
                    with tracker:
                        loss = forward_backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(impl.model.parameters(), 5.0)
                scaler.step(opt)
                scaler.update()
                return loss

            times, cpu_times = [], []
            for i in range(cmd["warmup"] + cmd["steps"]):
                c0 = time.process_time()
                if cuda:
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    mem0 = torch.cuda.memory_allocated()
                t0 = time.perf_counter()
                if cmd["op"] == "train_mem" and i >= cmd["warmup"] and not cuda:
                    tracker = _peak_tracker()
                    result["loss"] = step(tracker)
                    result["peak_mb"] = tracker.peak / 2**20
                else:
                    result["loss"] = step()
                if cuda:
                    torch.cuda.synchronize()
                    result["peak_mb"] = (
                        torch.cuda.max_memory_allocated() - mem0
                    ) / 2**20
                if i >= cmd["warmup"]:
                    times.append(time.perf_counter() - t0)
                    cpu_times.append(time.process_time() - c0)
            result["times"], result["cpu_times"] = times, cpu_times
        elif cmd["op"] in ("infer", "infer_mem"):
            g = torch.Generator().manual_seed(1)
            text = torch.randint(1, VOCAB, (cmd["tokens"],), generator=g).to(device)
            durations = even_durations(2 * cmd["tokens"] + 1, cmd["frames"]).to(device)
            impl.model.eval()
            times, cpu_times = [], []
            with torch.inference_mode(), autocast:
                for i in range(cmd["warmup"] + cmd["steps"]):
                    t0, c0 = time.perf_counter(), time.process_time()
                    if cmd["op"] == "infer_mem" and not cuda:
                        with _peak_tracker() as tracker:
                            y = impl.infer(text, durations, 0.333)
                        result["peak_mb"] = tracker.peak / 2**20
                    else:
                        y = impl.infer(text, durations, 0.333)
                    if cuda:
                        torch.cuda.synchronize()
                    if i >= cmd["warmup"]:
                        times.append(time.perf_counter() - t0)
                        cpu_times.append(time.process_time() - c0)
            frames = y.shape[0] if y.shape[-1] == N_MELS else y.shape[-1]
            if frames != cmd["frames"]:
                raise RuntimeError(
                    f"{key}: {frames} frames, expected {cmd['frames']}: "
                    "the work is not matched"
                )
            result["times"], result["cpu_times"] = times, cpu_times
        result["params"] = sum(p.numel() for p in impl.model.parameters())
        out.write(json.dumps(result) + "\n")
        out.flush()


# ---------------------------------------------------------------------------------------
# Driver
def install_peers():
    if (PEER_VENV / "bin" / "python").exists():
        print(f"{PEER_VENV} exists", file=sys.stderr)
        return
    print(
        f"creating {PEER_VENV} (coqui-tts 0.28, several minutes) ...", file=sys.stderr
    )
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    r = subprocess.run(
        [str(PEER_VENV / "bin" / "pip"), "install", "-q", *PEER_REQUIREMENTS]
    )
    if r.returncode != 0:
        raise SystemExit(
            f"Coqui TTS did not install into {PEER_VENV} (pip rc {r.returncode})"
        )


class Worker:
    def __init__(self, impl, python, device, threads):
        env = dict(
            os.environ,
            OMP_NUM_THREADS=str(threads),
            MKL_NUM_THREADS=str(threads),
            PYTHONWARNINGS="ignore",
        )
        if impl == "coqui":  # its venv, without our checkout on the path
            env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen(
            [python, str(Path(__file__).resolve()), "--worker", "--device", device],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def ask(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"worker for {cmd['impl']} died on {cmd}")
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def interleaved(workers, runners, op, repeats, extra):
    """Every runner does one (warmed-up) call per round; the order rotates each round."""
    results = {r: dict(times=[], cpu_times=[]) for r in runners}
    for r in runners:  # warm-up and first-use costs (model build, ActNorm init)
        results[r].update(
            workers[r[0]].ask(
                op=op, impl=r[0], variant=r[1], warmup=1, steps=0, **extra
            )
        )
        results[r]["times"], results[r]["cpu_times"] = [], []
    for k in range(repeats):
        order = runners[k % len(runners) :] + runners[: k % len(runners)]
        for r in order:
            got = workers[r[0]].ask(
                op=op, impl=r[0], variant=r[1], warmup=0, steps=1, **extra
            )
            results[r]["times"] += got["times"]
            results[r]["cpu_times"] += got["cpu_times"]
            results[r]["loss"] = got.get("loss")
    return results


def summary(times, cpu_times):
    """Wall time median [min, max]; CPU time of the worker process (all its threads), the
    steadier figure on a loaded machine with one thread."""
    med = statistics.median(times)
    return dict(
        median=med,
        min=min(times),
        max=max(times),
        n=len(times),
        cpu_median=statistics.median(cpu_times),
        cpu_min=min(cpu_times),
    )


def run(args):
    device = args.device
    runners = [("ours", v) for v in args.ours] + ([("coqui", "")] if args.coqui else [])
    pythons = dict(ours=sys.executable, coqui=args.peer_python)
    if args.coqui and not Path(pythons["coqui"]).exists():
        raise SystemExit(
            f"Coqui's Python is missing ({args.peer_python}): run with --install-peers, "
            "name another with --peer_python, or pass --no-coqui"
        )
    rows = []
    threads_list = args.threads if device == "cpu" else [1]
    for threads in threads_list:
        workers = {
            impl: Worker(impl, pythons[impl], device, threads)
            for impl in {r[0] for r in runners} | {"ours"}
        }
        try:
            for amp in args.amp:
                for batching, bs, ls in [
                    (b, n, x)
                    for b in args.batching
                    for n in args.batch_sizes
                    for x in args.length_scales
                ]:
                    tokens, frames = batch_lengths(bs, ls, batching)
                    extra = dict(threads=threads, tokens=tokens, frames=frames, amp=amp)
                    res = interleaved(workers, runners, "train", args.repeats, extra)
                    mem = {}
                    if args.memory and threads == threads_list[0]:
                        for r in runners:
                            mem[r] = workers[r[0]].ask(
                                op="train_mem",
                                impl=r[0],
                                variant=r[1],
                                warmup=0,
                                steps=1,
                                **extra,
                            )["peak_mb"]
                    elif device != "cpu":
                        mem = {r: res[r].get("peak_mb") for r in runners}
                    for r in runners:
                        rows.append(
                            dict(
                                kind="train",
                                impl=r[0],
                                variant=r[1],
                                threads=threads,
                                amp=amp,
                                batch=bs,
                                batching=batching,
                                length_scale=ls,
                                tokens=tokens,
                                frames=frames,
                                params=res[r]["params"],
                                loss=res[r]["loss"],
                                peak_mb=mem.get(r),
                                load=os.getloadavg()[0],
                                **summary(res[r]["times"], res[r]["cpu_times"]),
                            )
                        )
                        print(_line(rows[-1]), file=sys.stderr, flush=True)
                infer_runners = [("ours", v) for v in args.infer_ours] + [
                    r for r in runners if r[0] == "coqui"
                ]
                for n in args.infer_tokens:
                    frames = round(n * 5.6)
                    frames += frames % 2
                    extra = dict(threads=threads, tokens=n, frames=frames, amp=amp)
                    res = interleaved(
                        workers, infer_runners, "infer", args.infer_repeats, extra
                    )
                    mem = {}
                    if args.memory and threads == threads_list[0] and device == "cpu":
                        for r in infer_runners:
                            mem[r] = workers[r[0]].ask(
                                op="infer_mem",
                                impl=r[0],
                                variant=r[1],
                                warmup=0,
                                steps=1,
                                **extra,
                            )["peak_mb"]
                    for r in infer_runners:
                        rows.append(
                            dict(
                                kind="infer",
                                impl=r[0],
                                variant=r[1],
                                threads=threads,
                                amp=amp,
                                batch=1,
                                length_scale=1.0,
                                tokens=[n],
                                frames=[frames],
                                params=res[r]["params"],
                                peak_mb=mem.get(r),
                                load=os.getloadavg()[0],
                                **summary(res[r]["times"], res[r]["cpu_times"]),
                            )
                        )
                        print(_line(rows[-1]), file=sys.stderr, flush=True)
        finally:
            for w in workers.values():
                w.close()
    return rows


def _name(row):
    return "Coqui" if row["impl"] == "coqui" else f"ours ({row['variant']})"


def _line(r):
    mem = "" if r["peak_mb"] is None else f", peak {r['peak_mb']:.0f} MB"
    return (
        f"  {r['kind']} {_name(r):24s} {r['threads']}t {r['amp']:4s} "
        f"{r.get('batching', '')} B={r['batch']:2d} "
        f"x{r['length_scale']}: {r['median'] * 1e3:8.0f} ms [{r['min'] * 1e3:.0f}, "
        f"{r['max'] * 1e3:.0f}] (n={r['n']}, load {r['load']:.1f}), CPU "
        f"{r['cpu_median'] * 1e3:.0f} ms{mem}"
    )


def _cpu_ratio(r, ref):
    return (
        "" if ref is None or r is ref else f"{ref['cpu_median'] / r['cpu_median']:.2f}x"
    )


def report(rows, args, info):
    lines = [
        "## Training step and inference against Coqui TTS's GlowTTS",
        "",
        f"{info}. Command: `python bench/train_step.py {' '.join(sys.argv[1:])}`.",
        "",
        "Random weights, paper configuration for both (28.6M-parameter class). Step = "
        "forward, MLE + duration loss, backward, clip 5, Adam. Times: median [min, max] "
        "over interleaved turns; ratios from the same run (Coqui / ours: > 1 means we "
        "are faster). CPU s/step: process CPU time (all threads), the steadier figure "
        "when the machine is loaded. Memory: peak live tensor storage during forward + "
        "backward "
        "(activations and gradients; weights and optimizer excluded).",
        "",
    ]
    train = [r for r in rows if r["kind"] == "train"]
    if train:
        lines += [
            "| threads | amp | batching | B | length x | frames (max/mean) | "
            "implementation | step (ms) | samples/s | Coqui/ours time | CPU s/step | "
            "Coqui/ours CPU | peak mem (MB) | mem / Coqui |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
    for r in train:
        ref = next(
            (
                c
                for c in train
                if c["impl"] == "coqui"
                and all(
                    c[k] == r[k]
                    for k in ("threads", "amp", "batching", "batch", "length_scale")
                )
            ),
            None,
        )
        ratio = "" if ref is None or r is ref else f"{ref['median'] / r['median']:.2f}x"
        mem_ratio = (
            ""
            if ref is None or r is ref or r["peak_mb"] is None or ref["peak_mb"] is None
            else f"{r['peak_mb'] / ref['peak_mb']:.2f}"
        )
        mem = "" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
        lines.append(
            f"| {r['threads']} | {r['amp']} | {r['batching']} | {r['batch']} | "
            f"{r['length_scale']} | "
            f"{max(r['frames'])}/{statistics.mean(r['frames']):.0f} | {_name(r)} | "
            f"{r['median'] * 1e3:.0f} [{r['min'] * 1e3:.0f}, {r['max'] * 1e3:.0f}] | "
            f"{r['batch'] / r['median']:.2f} | {ratio} | {r['cpu_median']:.2f} | "
            f"{_cpu_ratio(r, ref)} | {mem} | {mem_ratio} |"
        )
    infer = [r for r in rows if r["kind"] == "infer"]
    if infer:
        lines += [
            "",
            "Inference, one utterance, forced durations (2N+1 tokens with blanks), "
            "noise 0.333:",
            "",
            "| threads | amp | tokens | frames | implementation | time (ms) | "
            "Coqui/ours time | CPU ms | Coqui/ours CPU | peak mem (MB) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
    for r in infer:
        ref = next(
            (
                c
                for c in infer
                if c["impl"] == "coqui"
                and all(c[k] == r[k] for k in ("threads", "amp", "tokens"))
            ),
            None,
        )
        ratio = "" if ref is None or r is ref else f"{ref['median'] / r['median']:.2f}x"
        mem = "" if r["peak_mb"] is None else f"{r['peak_mb']:.1f}"
        lines.append(
            f"| {r['threads']} | {r['amp']} | {r['tokens'][0]} | {r['frames'][0]} | "
            f"{_name(r)} | {r['median'] * 1e3:.0f} [{r['min'] * 1e3:.0f}, "
            f"{r['max'] * 1e3:.0f}] | {ratio} | {r['cpu_median'] * 1e3:.0f} | "
            f"{_cpu_ratio(r, ref)} | {mem} |"
        )
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--install-peers",
        action="store_true",
        help=f"create Coqui's venv ({PEER_VENV}) if missing",
    )
    p.add_argument(
        "--no-coqui", dest="coqui", action="store_false", help="time only our variants"
    )
    p.add_argument(
        "--peer_python",
        default=str(PEER_VENV / "bin" / "python"),
        help="the Python that has coqui-tts (default: the venv --install-peers makes)",
    )
    p.add_argument("--ours", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument(
        "--batch_sizes",
        nargs="*",
        type=int,
        default=[8, 16],
        help="none: no training step",
    )
    p.add_argument(
        "--length_scales",
        nargs="+",
        type=float,
        default=[1.0],
        help="scale every utterance's length (growth with length)",
    )
    p.add_argument(
        "--batching",
        nargs="+",
        choices=["random", "sorted"],
        default=["random"],
        help="random LJSpeech utterances, or neighbours in length order",
    )
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument(
        "--repeats", type=int, default=3, help="timed steps per implementation"
    )
    p.add_argument(
        "--infer_tokens",
        nargs="*",
        type=int,
        default=[180],
        help="inference input lengths (tokens before blanks); none to skip",
    )
    p.add_argument("--infer_repeats", type=int, default=7)
    p.add_argument(
        "--infer_ours",
        nargs="+",
        default=["plain"],
        choices=INFER_VARIANTS,
        help="our inference variants (the training options change nothing there; "
        "cuda_graphs: GlowTTS.enable_cuda_graphs, CUDA only)",
    )
    p.add_argument(
        "--memory",
        type=lambda v: v.lower() in ("1", "true", "yes"),
        default=True,
        help="trace peak memory (first thread count only)",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    p.add_argument(
        "--amp",
        nargs="+",
        default=["none"],
        choices=["none", "fp16", "bf16"],
        help="autocast dtypes (CUDA)",
    )
    p.add_argument("--out_json", default=str(HERE / "results" / "train_step.json"))
    p.add_argument("--out_md", default=str(HERE / "results" / "train_step.md"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.device)
    if args.install_peers:
        install_peers()
    import platform

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in open("/proc/cpuinfo")
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    info = (
        f"{time.strftime('%Y-%m-%d %H:%M')}, {cpu}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f} at the start; torch {torch.__version__}, "
        f"device {args.device}"
        + (
            f" ({torch.cuda.get_device_name()})"
            if args.device.startswith("cuda")
            else ""
        )
    )
    rows = run(args)
    info += f"; load {os.getloadavg()[0]:.1f} at the end"
    md = report(rows, args, info)
    print(md)
    for path, text in (
        (
            args.out_json,
            json.dumps(dict(info=info, args=vars(args), rows=rows), indent=1),
        ),
        (args.out_md, md),
    ):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(path + ".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(path)
    return rows


if __name__ == "__main__":
    main()
