#!/usr/bin/env python
"""What CUDA graphs cost and give at inference (issue 13): the first call of a bucket
captures, later ones replay. Paper configuration, random weights, predicted durations.

    python bench/cuda_graph_capture.py --tokens 180
"""

import argparse
import time

import torch

from espnet_glowtts import GlowTTS


def timed(fn, repeats=1):
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats * 1e3, out


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tokens", type=int, default=180)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device")
    torch.manual_seed(0)
    model = GlowTTS(idim=67, odim=80).cuda().eval()
    text = torch.randint(1, 67, (args.tokens,)).cuda()

    def run():
        return model.inference(text, noise_scale=0.0)

    timed(run)
    eager, ref = timed(run, args.repeats)
    model.enable_cuda_graphs()
    first, _ = timed(run)
    replay, out = timed(run, args.repeats)
    diff = (out["feat_gen"] - ref["feat_gen"]).abs().max().item()
    print(
        f"{args.tokens} tokens, {ref['feat_gen'].shape[0]} frames: eager {eager:.1f} ms, "
        f"first call with capture {first:.0f} ms, replay {replay:.1f} ms, "
        f"max |diff| {diff:.2e}, durations equal "
        f"{torch.equal(out['duration'], ref['duration'])}"
    )


if __name__ == "__main__":
    main()
