"""Costs measured on a built module's forward pass: the independent check of the analytic ones.

Forward hooks (:func:`hook_counts`) on every convolution and linear layer read the real tensor
shapes, with the conventions of :mod:`nas.cost.complexity` (multiply-adds, plus one per output
channel for a bias; acts are output elements). ``torch_flops`` asks torch's own FLOP counter
instead.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def hook_counts(model: nn.Module, resolution: int = 224) -> dict[str, int]:
    """FLOPs and acts of one image through ``model``, and its parameter count."""
    counts = {"flops": 0, "acts": 0}

    def hook(module: nn.Module, inputs, output: torch.Tensor) -> None:
        per_image = output[0].numel()
        bias = module.bias.numel() if module.bias is not None else 0
        counts["flops"] += per_image * module.weight[0].numel() + bias
        counts["acts"] += per_image

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, resolution, resolution))
    finally:
        for h in handles:
            h.remove()
    counts["params"] = sum(p.numel() for p in model.parameters())
    return counts


def torch_flops(model: nn.Module, resolution: int = 224) -> int:
    """torch's FLOP count of one image (2 per multiply-add, biases not counted), halved."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.zeros(1, 3, resolution, resolution))
    return counter.get_total_flops() // 2
