"""Stage 6's training curves, drawn once at the end instead of after every epoch.

ESPnet's trainer redraws every curve into ``<exp>/images/`` after each epoch when
``use_matplotlib`` is on (its default). On 2 CPU cores that took 4 s an epoch, about a
minute of the demo's 16 short epochs. A config with ``use_matplotlib: false`` saves it;
stage 6 then draws the same figures once, with ESPnet's own ``Reporter``, from the
reporter state that the trainer keeps in ``checkpoint.pth``. The curves are also in
``<exp>/tensorboard/`` either way.

    python -m glowtts_recipe.plot_training --exp_dir exp/tts_train_glow_tts
"""

import argparse
import shutil
import sys
from pathlib import Path

from glowtts_recipe.datadir import DataError, main_guard


def plot_training(exp_dir: Path) -> Path:
    """Draw ``exp_dir/images/<key>.png`` from ``exp_dir/checkpoint.pth``; return the dir.

    The figures go to a temporary directory first, so ``images/`` is either the old set
    or the complete new one.
    """
    import torch
    from espnet2.train.reporter import Reporter

    checkpoint = exp_dir / "checkpoint.pth"
    if not checkpoint.is_file():
        raise DataError(f"{checkpoint}: missing (train first: stage 6)")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if "reporter" not in state:
        raise DataError(f"{checkpoint}: no 'reporter' state (not an ESPnet checkpoint)")
    reporter = Reporter()
    reporter.load_state_dict(state["reporter"])
    images, tmp = exp_dir / "images", exp_dir / ".images.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    reporter.matplotlib_plot(tmp)
    shutil.rmtree(images, ignore_errors=True)
    tmp.rename(images)
    return images


def main(cmd=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--exp_dir", type=Path, required=True)
    args = parser.parse_args(cmd)
    images = plot_training(args.exp_dir)
    print(f"{images}: {len(list(images.glob('*.png')))} curves", file=sys.stderr)


if __name__ == "__main__":
    main_guard(main)
