"""Zero-cost scores: properties of a network at initialisation that may predict its accuracy.

Each score needs one batch (or none) and about a second for a 400MF candidate's proxy, against
tens of seconds for a proxy training. All are computed on the network as ``build`` makes it
(pycls initialisation, no zero-initialised residual branches), in float64 where they multiply
large numbers, and returned on a log scale where the raw score spans orders of magnitude:

- ``synflow`` (Tanaka et al. 2020, as a NAS score by Abdelfattah et al. 2021): with every weight
  replaced by its absolute value and batch norm as the identity, the log of
  ``sum(|w * dR/dw|)`` for ``R`` the sum of the output on an all-ones input. Data-free.
- ``naswot`` (Mellor et al. 2021): the log-determinant of the Hamming-similarity kernel of the
  binary activation patterns (which units are positive) of every activation layer, over a batch.
- ``grad_norm``: the log of the summed L2 norms of the gradients of convolution and linear
  weights for the cross-entropy of one batch.
- ``snip`` (Lee et al. 2019): the log of ``sum(|w * dL/dw|)`` for the same batch.

They are measured against published accuracies of fully trained networks in
``benchmarks/proxy_ground_truth.py``; what they are worth is written there, not assumed here.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

WEIGHTED = (nn.Conv2d, nn.Linear)
ACTIVATION_LAYERS = (nn.ReLU, nn.ReLU6)
SCORES = ("synflow", "naswot", "grad_norm", "snip")


def scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
           which: tuple[str, ...] = SCORES) -> dict[str, float]:
    """The named scores of ``model`` (left unchanged) on the batch ``x``, ``y``."""
    unknown = sorted(set(which) - set(SCORES))
    if unknown:
        raise ValueError(f"unknown zero-cost score {unknown[0]!r}; choose from {SCORES}")
    result = {}
    if "synflow" in which:
        result["synflow"] = synflow(model, tuple(x.shape[1:]))
    if "naswot" in which:
        result["naswot"] = naswot(model, x)
    if {"grad_norm", "snip"} & set(which):
        grads = _loss_gradients(model, x, y)
        if "grad_norm" in which:
            result["grad_norm"] = _log(sum(g.norm().item() for _, g in grads))
        if "snip" in which:
            result["snip"] = _log(sum((w * g).abs().sum().item() for w, g in grads))
    return result


def synflow(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    net = copy.deepcopy(model).double().eval()  # eval: fresh batch norms are the identity
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad()
    net(torch.ones(1, *input_shape, dtype=torch.float64)).sum().backward()
    total = sum((m.weight * m.weight.grad).abs().sum().item() for m in net.modules()
                if isinstance(m, WEIGHTED) and m.weight.grad is not None)
    return _log(total) if math.isfinite(total) else math.inf  # overflows in very deep nets


@torch.no_grad()
def naswot(model: nn.Module, x: torch.Tensor) -> float:
    kernel = torch.zeros(len(x), len(x), dtype=torch.float64)

    def accumulate(_module, _inputs, output):  # per layer, so no code matrix is kept
        c = (output.flatten(1) > 0).double()
        kernel.add_(c @ c.T).add_((1 - c) @ (1 - c).T)

    hooks = [m.register_forward_hook(accumulate) for m in model.modules()
             if isinstance(m, ACTIVATION_LAYERS)]
    was_training = model.training
    state = copy.deepcopy(model.state_dict())  # a train-mode forward moves running stats
    try:
        model.train()  # batch statistics, as at the first training step
        model(x)
    finally:
        model.load_state_dict(state)
        model.train(was_training)
        for h in hooks:
            h.remove()
    return torch.linalg.slogdet(kernel).logabsdet.item()


def _loss_gradients(model: nn.Module, x: torch.Tensor,
                    y: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    net = copy.deepcopy(model).train()
    net.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()
    return [(m.weight.detach(), m.weight.grad.detach()) for m in net.modules()
            if isinstance(m, WEIGHTED) and m.weight.grad is not None]


def _log(value: float) -> float:
    return math.log(value) if value > 0 else -math.inf
