"""Memory-efficient backpropagation through the invertible flow decoder (Glow's trick).

The plain decoder keeps every flow's activations (the WaveNet's gates, the couplings'
scales) until backward. Here the forward pass runs without building a graph and keeps only
the decoder's output; backward walks the flows in reverse, reconstructs each flow's input
from its output with the exact inverse, re-runs that one flow with autograd and backpropagates
through it. Peak activation memory of the decoder drops from all blocks to one block; the
price is one more WaveNet forward per coupling (a coupling's inverse and its re-run share
the one WaveNet pass: its scale and shift depend only on the half it passes through).

Dropout inside the couplings is reproduced exactly: the RNG state before each coupling is
saved in forward and restored for its reconstruction and re-run, and the global RNG stream
after the decoder is the same as on the plain path. Gradients equal the plain path's up to
the float32 round-off of the reconstruction (tests/test_memory_efficient.py checks 1e-5).
"""

from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn


def _rng_state(device: torch.device) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


class _RestoredRng:
    """Runs a block with the RNG state it had in forward; the global stream is untouched."""

    def __init__(self, state, device: torch.device):
        self.state, self.device = state, device
        self.fork = torch.random.fork_rng(
            devices=[device] if device.type == "cuda" else [], device_type=device.type
        )

    def __enter__(self):
        self.fork.__enter__()
        cpu, cuda = self.state
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, self.device)

    def __exit__(self, *exc):
        return self.fork.__exit__(*exc)


def _recompute(flow, z, mask, g, state):
    """Input of ``flow`` reconstructed from its output z, and the flow re-run on it.

    Returns the input as a list of leaves (concatenated along channels), the recomputed
    output and log-determinant. A coupling's scale and shift come from the half it passes
    through, so one WaveNet run both inverts and recomputes it; other flows are inverted,
    then re-run.
    """
    if hasattr(flow, "scale_shift"):
        half = z.size(1) // 2
        with _RestoredRng(state, z.device), torch.enable_grad():
            x_a = z[:, :half].detach().requires_grad_(True)
            m, logs = flow.scale_shift(x_a, mask, g)
            x_b = flow.affine(
                z[:, half:], m.detach(), logs.detach(), mask, reverse=True
            )
            x_b.requires_grad_(True)
            z_b = flow.affine(x_b, m, logs, mask)
            return (
                [x_a, x_b],
                torch.cat([x_a, z_b], dim=1),
                (logs * mask).sum(dim=(1, 2)),
            )
    with _RestoredRng(state, z.device), torch.no_grad():
        x, _ = flow(z, mask, reverse=True, g=g)
    x = x.detach().requires_grad_(True)
    with _RestoredRng(state, z.device), torch.enable_grad():
        z_re, logdet = flow(x, mask, g=g)
    return [x], z_re, logdet


class _InvertibleFlows(torch.autograd.Function):
    """(x, mask, g, flows, *params) -> (z, logdet), storing only z for backward."""

    @staticmethod
    def forward(ctx, x, mask, g, flows, *params):
        ctx.params = params
        states: List = []
        logdet_total = x.new_zeros(x.size(0))
        with torch.no_grad():
            for flow in flows:
                states.append(_rng_state(x.device))
                x, logdet = flow(x, mask, g=g)
                logdet_total = logdet_total + logdet
        ctx.flows, ctx.states = flows, states
        ctx.save_for_backward(x, mask, g)
        return x, logdet_total

    @staticmethod
    def backward(ctx, grad_z, grad_logdet):
        z, mask, g = ctx.saved_tensors
        flows = ctx.flows
        g_leaf = (
            None if g is None else g.detach().requires_grad_(ctx.needs_input_grad[2])
        )
        grad_g = None
        param_grads = {}
        if grad_logdet is None:
            grad_logdet = z.new_zeros(z.size(0))
        if grad_z is None:
            grad_z = torch.zeros_like(z)
        z = z.detach()
        # The decoder is float32 by design; autocast must not change the recomputation.
        with torch.autocast(device_type=z.device.type, enabled=False):
            for flow, state in zip(reversed(flows), reversed(ctx.states)):
                leaves, z_re, logdet = _recompute(flow, z, mask, g_leaf, state)
                params = [p for p in flow.parameters() if p.requires_grad]
                inputs = (
                    leaves
                    + params
                    + ([g_leaf] if g_leaf is not None and g_leaf.requires_grad else [])
                )
                grads = torch.autograd.grad(
                    [z_re, logdet], inputs, [grad_z, grad_logdet], allow_unused=True
                )
                n = len(leaves)
                grad_z = grads[0] if n == 1 else torch.cat(grads[:n], dim=1)
                for p, gp in zip(params, grads[n : n + len(params)]):
                    if gp is not None:
                        param_grads[p] = (
                            gp if p not in param_grads else param_grads[p] + gp
                        )
                if len(grads) > n + len(params) and grads[-1] is not None:
                    grad_g = grads[-1] if grad_g is None else grad_g + grads[-1]
                z = torch.cat(leaves, dim=1).detach() if n > 1 else leaves[0].detach()
        ctx.flows = ctx.states = None
        params, ctx.params = ctx.params, None
        return (grad_z, None, grad_g, None, *(param_grads.get(p) for p in params))


def invertible_flows(
    flows: Sequence[nn.Module],
    x: torch.Tensor,
    mask: torch.Tensor,
    g: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Run ``flows`` forward (x -> z) with activations recomputed in backward.

    Every flow must map ``(x, mask, g=g) -> (z, logdet)`` and invert with ``reverse=True``.

    Args:
        flows (Sequence[Module]): The flows, in forward order.
        x (Tensor): Input (B, C, T), zero at padded frames.
        mask (Tensor): Valid frames (B, 1, T).
        g (Optional[Tensor]): Global conditioning (B, global_channels, 1).

    Returns:
        Tensor: Output (B, C, T).
        Tensor: Summed log-determinant (B,).

    """
    params = tuple(p for flow in flows for p in flow.parameters() if p.requires_grad)
    return _InvertibleFlows.apply(x, mask, g, tuple(flows), *params)
