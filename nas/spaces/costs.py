"""A network's exact complexity summed from cached costs of its parts, the count of rejection
sampling (equal to :func:`nas.network.complexity`, which it is tested against)."""

from __future__ import annotations

import functools
from itertools import groupby

from nas.blocks import Stage, Unit
from nas.config import Network
from nas.cost.complexity import Complexity, Cx, StageCost
from nas.network import parts

CACHE_SIZE = 1 << 17  # part costs kept by cached_complexity


def cached_complexity(net: Network, resolution: int, num_classes: int) -> Complexity:
    """The network's complexity, equal to :func:`nas.network.complexity`'s, summed from cached
    costs of its parts: the stem, each stage (a function of the stage, its input width and
    size) and the head. A part grows the receptive field by a fixed multiple of the jump it is
    entered with, so that too adds up from the parts."""
    totals = [0, 0, 0, 0]
    stages = []
    h = w = resolution
    rf = jump = 1
    for part in parts(net, num_classes):
        key = (part, h, w)
        if key not in _PART_COSTS:
            if len(_PART_COSTS) >= CACHE_SIZE:
                _PART_COSTS.clear()
            _PART_COSTS[key] = _cost(part.units(), h, w)
        *cost, h, w, growth, stride = _PART_COSTS[key]
        rf, jump = rf + growth * jump, jump * stride
        totals = [t + c for t, c in zip(totals, cost)]
        if isinstance(part.spec, Stage):
            stages.append(StageCost(part.spec.block, part.spec.depth,
                                    part.spec.out_width(part.w_in), part.spec.stride, *cost,
                                    h, rf))
    return Complexity(*totals, stages[-1].receptive_field, tuple(stages))


_PART_COSTS: dict[tuple, tuple[int, ...]] = {}


def _cost(units: list[Unit], h: int, w: int) -> tuple[int, ...]:
    """Costs of a run of units, the size they leave, and their receptive-field growth (in units
    of the jump they are entered with) and stride; a unit repeated without changing the size or
    the jump (the blocks after a stage's first) is looked up once and multiplied."""
    totals = [0, 0, 0, 0]
    growth, stride = 0, 1
    for unit, run in groupby(units):
        left = len(list(run))
        while left:
            *cost, h_out, w_out, unit_growth, unit_stride = _unit_cost(
                unit.cls, tuple(unit.kwargs.items()), h, w)
            times = left if (h_out, w_out, unit_stride) == (h, w, 1) else 1
            totals = [t + times * c for t, c in zip(totals, cost)]
            growth += times * unit_growth * stride
            stride *= unit_stride
            h, w, left = h_out, w_out, left - times
    return *totals, h, w, growth, stride


@functools.lru_cache(maxsize=CACHE_SIZE)
def _unit_cost(cls: type, kwargs: tuple, h: int, w: int) -> tuple[int, ...]:
    cx = cls.complexity(Cx(h, w), **dict(kwargs))
    return cx.flops, cx.params, cx.acts, cx.mac, cx.h, cx.w, cx.rf - 1, cx.jump
