"""Zero-cost scores: properties of a network at initialisation that may predict its accuracy.

Each score needs one batch (or none) and about a second for a 400MF candidate's proxy, against
tens of seconds for a proxy training. All are computed on the network as ``build`` makes it
(pycls initialisation, no zero-initialised residual branches), in float64 where they multiply
large numbers, and returned on a log scale where the raw score spans orders of magnitude:

- ``synflow`` (Tanaka et al. 2020, as a NAS score by Abdelfattah et al. 2021): the log of
  ``sum(|w * dR/dw|)`` over conv and linear weights, for ``R`` the sum of the output on an
  all-ones input of the linearised network: every weight replaced by its absolute value, biases
  zero, batch norm, ReLU and ReLU6 the identity and SE gates open (1). ReLU is the identity on
  the positive values it sees anyway; the rest keeps ``R`` a sum over paths of products of
  weights, as the score is defined, where ReLU6 would saturate and SE gates halve. Each block's
  output is scaled to at most 1 and the scale divided out of the score exactly, so networks of
  a thousand layers stay within float64. Data-free.
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

from nas.blocks.layers import SE

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
    net = _linearised(model)
    scales = []

    def normalise(_module, _inputs, output):  # the output of a link of the chain, divided by
        scale = output.detach().amax()  # its largest value, is a constant factor of R and of
        if 0 < scale < math.inf:  # every dR/dw, so it is divided out of the score exactly
            scales.append(math.log(scale.item()))
            return output / scale
        return output

    hooks = [link.register_forward_hook(normalise) for link in _chain(net)]
    net(torch.ones(1, *input_shape, dtype=torch.float64)).sum().backward()
    for h in hooks:
        h.remove()
    total = sum((m.weight * m.weight.grad).abs().sum().item() for m in net.modules()
                if isinstance(m, WEIGHTED) and m.weight.grad is not None)
    return _log(total) + sum(scales) if math.isfinite(total) else math.inf


def _chain(net: nn.Module) -> list[nn.Module]:
    """The links of a network that is a chain (nas's ``Net``, or an ``nn.Sequential``): its
    children, and the children of those that are sequences (a stage's blocks); the whole
    signal passes through each link's output."""
    return [m for child in net.children()
            for m in (child.children() if isinstance(child, nn.Sequential) else (child,))]


def _linearised(model: nn.Module) -> nn.Module:
    """A float64 copy with |weights|, zero biases, and batch norm, activations and SE gates as
    the identity."""
    net = copy.deepcopy(model).double().eval()  # eval: no dropout
    for parent in list(net.modules()):
        for name, child in parent.named_children():
            if isinstance(child, (*ACTIVATION_LAYERS, SE, nn.BatchNorm2d)):
                setattr(parent, name, nn.Identity())
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, WEIGHTED):
                m.weight.abs_()
                if m.bias is not None:
                    m.bias.zero_()
    return net


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
