"""Analytic complexity: one accumulator that every module's ``complexity`` function advances.

Every counting rule of the tool lives in this file.

FLOPs
    multiply-adds of convolutions and linear layers, plus one per output channel for a bias
    (pycls's convention, which the RegNet paper and torchvision's published figures use).
    Batch norm, activations, pooling and additions are free.
params
    every learnable tensor element: weights, biases and the affine weight and bias of batch
    norm; running statistics are buffers, not parameters.
acts
    output elements of convolutions and linear layers (pycls's "acts").
mac
    memory access cost, in elements, of inference with batch norm folded into the preceding
    convolution (ShuffleNetV2's definition, generalized):
      * convolution / linear: input + output + weights (+ bias);
      * activation, batch norm that cannot be folded (pre-activation), sigmoid: input + output;
      * residual addition and SE scaling: both inputs + output;
      * concatenation and channel shuffle: input + output (one copy);
      * channel split: free (a view);
      * strided subsampling with zero channels appended (option-A shortcut): the input read
        at the output size + the output;
      * pooling (max, average, global): input + output.
receptive field
    of the deepest path, grown by ``rf += (k - 1) * jump`` and ``jump *= stride`` for every
    kernel (the forward form of F(i) = (F(i+1) - 1) * s + k).

Spatial sizes follow padding k // 2 (and ceil-mode pooling): h' = (h - 1) // stride + 1.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Cx:
    """Running totals at a point of the network: feature-map size, costs, receptive field."""

    h: int
    w: int
    flops: int = 0
    params: int = 0
    acts: int = 0
    mac: int = 0
    rf: int = 1
    jump: int = 1

    def _spatial(self, k: int, stride: int) -> int:
        """Input elements per channel; moves to the output size and grows the receptive field."""
        n_in = self.h * self.w
        self.h, self.w = (self.h - 1) // stride + 1, (self.w - 1) // stride + 1
        self.rf += (k - 1) * self.jump
        self.jump *= stride
        return n_in

    def conv(self, w_in: int, w_out: int, k: int, stride: int = 1, groups: int = 1,
             bias: bool = False) -> Cx:
        n_in = self._spatial(k, stride)
        n_out = self.h * self.w
        weights = k * k * w_in * w_out // groups + (w_out if bias else 0)
        self.flops += k * k * w_in * w_out * n_out // groups + (w_out if bias else 0)
        self.params += weights
        self.acts += w_out * n_out
        self.mac += w_in * n_in + w_out * n_out + weights
        return self

    def linear(self, w_in: int, w_out: int, bias: bool = True) -> Cx:
        weights = w_in * w_out + (w_out if bias else 0)
        self.flops += weights
        self.params += weights
        self.acts += w_out
        self.mac += w_in + w_out + weights
        return self

    def bn(self, c: int, folded: bool = True) -> Cx:
        """Batch norm: 2c params; folded into the previous convolution it moves no memory."""
        self.params += 2 * c
        if not folded:
            self.elementwise(c)
        return self

    def elementwise(self, c: int, inputs: int = 1) -> Cx:
        """An op reading ``inputs`` tensors of c channels and writing one (activation, add)."""
        self.mac += (inputs + 1) * c * self.h * self.w
        return self

    def pool(self, c: int, k: int, stride: int) -> Cx:
        n_in = self._spatial(k, stride)
        self.mac += c * (n_in + self.h * self.w)
        return self

    def subsample(self, w_in: int, w_out: int, stride: int) -> Cx:
        """Every ``stride``-th pixel of w_in channels, zero-padded to w_out channels."""
        self._spatial(1, stride)
        self.mac += (w_in + w_out) * self.h * self.w
        return self

    def global_pool(self, c: int) -> Cx:
        self.mac += c * (self.h * self.w + 1)
        self.h = self.w = 1
        return self

    def se(self, c: int, w_se: int) -> Cx:
        """Squeeze-and-excitation on c channels with a w_se bottleneck (1x1 convs with bias)."""
        h, w = self.h, self.w
        self.global_pool(c)
        self.conv(c, w_se, 1, bias=True).elementwise(w_se)
        self.conv(w_se, c, 1, bias=True).elementwise(c)
        self.h, self.w = h, w
        self.mac += 2 * c * h * w + c  # x * scale: read x and the scale, write the result
        return self

    @contextmanager
    def branch(self):
        """A side path (shortcut): it costs, but leaves size and receptive field as they were."""
        saved = (self.h, self.w, self.rf, self.jump)
        yield self
        self.h, self.w, self.rf, self.jump = saved


@dataclass(frozen=True)
class StageCost:
    block: str
    depth: int
    width: int
    stride: int
    flops: int
    params: int
    acts: int
    mac: int
    resolution: int
    receptive_field: int


@dataclass(frozen=True)
class Complexity:
    """Totals of a network at one input resolution and class count, with per-stage parts."""

    flops: int
    params: int
    acts: int
    mac: int
    receptive_field: int
    stages: tuple[StageCost, ...] = field(default_factory=tuple)

    def totals(self) -> dict[str, int]:
        return {"flops": self.flops, "params": self.params, "acts": self.acts, "mac": self.mac}
