import pytest
import torch

from espnet_glowtts import GlowTTS

TINY = dict(
    hidden_channels=16,
    filter_channels=32,
    num_heads=2,
    num_encoder_layers=2,
    duration_filter_channels=16,
    decoder_hidden_channels=16,
    num_flow_blocks=2,
    num_coupling_layers=2,
)


def tiny_glow_tts(idim: int = 12, odim: int = 8, **overrides) -> GlowTTS:
    """A GlowTTS small enough for exact checks on the CPU."""
    return GlowTTS(idim=idim, odim=odim, **{**TINY, **overrides})


def randomize_flows(model: torch.nn.Module, scale: float = 0.1) -> None:
    """Move every flow off its identity initialisation so that checks see real maps."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("decoder.") and (
                "end." in name or "log_scale" in name or name.endswith(".bias")
            ):
                p.normal_(0.0, scale)
        for module in model.modules():
            if hasattr(module, "initialized"):
                module.initialized.fill_(True)


def make_batch(idim=12, odim=8, text_lengths=(5, 3), feats_lengths=(30, 17), seed=0):
    g = torch.Generator().manual_seed(seed)
    b = len(text_lengths)
    text = torch.zeros(b, max(text_lengths), dtype=torch.long)
    for i, n in enumerate(text_lengths):
        text[i, :n] = torch.randint(2, idim - 1, (n,), generator=g)
    feats = torch.randn(b, max(feats_lengths), odim, generator=g)
    for i, n in enumerate(feats_lengths):
        feats[i, n:] = 0.0
    return dict(
        text=text,
        text_lengths=torch.tensor(text_lengths),
        feats=feats,
        feats_lengths=torch.tensor(feats_lengths),
    )


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
