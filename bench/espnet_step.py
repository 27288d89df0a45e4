"""Time (and optionally profile) one training step of an ESPnet TTS experiment's model.

The model is built from the experiment's ``config.yaml`` exactly as ``tts_train`` builds it
(front end, normalisation, GlowTTS or any other registered TTS), with random weights and a
random batch of raw audio: B utterances of ``--tokens`` tokens (before blanks) and
``--frames_per_token`` frames each. A step is forward, loss, backward, gradient clipping at
5 and an Adam step, as in the recipe's trainer. This separates the model's own cost from
the trainer around it (compare with the ``train_time`` that ESPnet logs).

    python bench/espnet_step.py --exp_dir egs2/ljspeech/tts_glow/exp/tts_train_glow_tts_mini_raw_phn_tacotron_espeak_ng_english_us_vits
    python bench/espnet_step.py --exp_dir ... --threads 1 --foreach true --profile true
"""

import argparse
import os
import time
from pathlib import Path

import torch
import yaml


def build(exp_dir: Path):
    from espnet2.tasks.tts import TTSTask

    import espnet_glowtts  # noqa: F401  (registers glow_tts)

    with open(exp_dir / "config.yaml", encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    # The config's paths (the normalisation statistics) are relative to the recipe.
    os.chdir(exp_dir.resolve().parent.parent)
    model = TTSTask.build_model(argparse.Namespace(**conf))
    hop = int((conf.get("feats_extract_conf") or {}).get("hop_length", 256))
    vocab = len(conf["token_list"])
    spks = int((conf.get("tts_conf") or {}).get("spks") or 0)
    return model.train(), hop, vocab, spks


def batch(args, hop: int, vocab: int, spks: int):
    g = torch.Generator().manual_seed(0)
    low, high = int(args.tokens * 0.8), args.tokens + 1
    lengths = torch.randint(low, high, (args.batch_size,), generator=g)
    text_lengths = lengths.sort(descending=True).values
    speech_lengths = (text_lengths * args.frames_per_token * hop).long()
    out = dict(
        text=torch.randint(
            1, vocab - 1, (args.batch_size, int(text_lengths[0])), generator=g
        ),
        text_lengths=text_lengths,
        speech=0.1 * torch.randn(args.batch_size, int(speech_lengths[0]), generator=g),
        speech_lengths=speech_lengths,
    )
    if spks:
        out["sids"] = torch.randint(1, spks, (args.batch_size, 1), generator=g)
    return out


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--exp_dir", type=Path, required=True)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument(
        "--tokens", type=int, default=45, help="longest text, before blanks"
    )
    parser.add_argument("--frames_per_token", type=float, default=6.0)
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--foreach", choices=["true", "false"], default="false")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--profile", choices=["true", "false"], default="false")
    args = parser.parse_args()
    if not (args.exp_dir / "config.yaml").is_file():
        raise SystemExit(
            f"{args.exp_dir}/config.yaml: not found (an ESPnet TTS exp dir)"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, hop, vocab, spks = build(args.exp_dir)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=1e-4, foreach=args.foreach == "true"
    )
    inputs = batch(args, hop, vocab, spks)

    def step():
        loss, _, _ = model(**inputs)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    for _ in range(3):  # warm-up (ActNorm's data-dependent init, allocator)
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    times.sort()
    frames = int(inputs["speech_lengths"].sum()) // hop
    print(
        f"{args.exp_dir.name}: B={args.batch_size}, {frames} frames, "
        f"{torch.get_num_threads()} thread(s), Adam foreach={args.foreach}: step "
        f"{1000 * times[len(times) // 2]:.1f} ms median "
        f"[{1000 * times[0]:.1f}, {1000 * times[-1]:.1f}] over {args.steps}"
    )
    if args.profile == "true":
        from torch.profiler import profile

        with profile() as prof:
            for _ in range(3):
                step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


if __name__ == "__main__":
    main()
