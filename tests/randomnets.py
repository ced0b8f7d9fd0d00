"""Random valid network configs of one block family: small enough to build by the hundred, or
with widths times ``scale``, as wide as ImageNet networks.

Shared by the property tests and ``benchmarks/complexity.py``.
"""

from __future__ import annotations

import random

from nas.blocks import FAMILIES, ConfigError, Stage
from nas.blocks.layers import ACTIVATIONS
from nas.blocks.residual import SE_PLACES, SHORTCUTS
from nas.blocks.resnext import STRIDE_PLACES
from nas.config import STEMS, Head, Network, Stem

EXPANSIONS = (1.0, 2.5, 4.0, 6.0)

FAMILY_PARAMS = {  # family -> (rng, scale) -> stage parameters
    "resnext": lambda rng, scale: dict(width=scale * rng.randrange(4, 65),
                                       bot_mul=rng.choice((0.25, 0.5, 1.0, 2.0)),
                                       group_w=rng.choice((1, 2, 4, 8, 16)),
                                       shortcut=rng.choice(SHORTCUTS),
                                       preact=rng.random() < 0.5, se_at=rng.choice(SE_PLACES),
                                       stride_at=rng.choice(STRIDE_PLACES)),
    "basic": lambda rng, scale: dict(width=scale * rng.randrange(4, 65),
                                     shortcut=rng.choice(SHORTCUTS), preact=rng.random() < 0.5,
                                     se_at=rng.choice(SE_PLACES),
                                     dropout=rng.choice((0.0, 0.3))),
    "mobilenetv2": lambda rng, scale: dict(width=scale * rng.randrange(4, 49),
                                           expansion=rng.choice(EXPANSIONS),
                                           kernel=rng.choice((3, 5, 7))),
    "shufflenetv2": lambda rng, scale: dict(width=2 * scale * rng.randrange(2, 33)),
    "igcv3": lambda rng, scale: dict(width=scale * rng.randrange(4, 49),
                                     expansion=rng.choice(EXPANSIONS),
                                     groups1=rng.choice((1, 2, 4)), groups2=rng.choice((1, 2, 4))),
    "densenet": lambda rng, scale: dict(growth=scale * rng.randrange(2, 17),
                                        bottleneck=rng.choice((0, 1, 2, 4)),
                                        compression=rng.choice((0.5, 0.75, 1.0))),
}


def random_stage(rng: random.Random, family: str, depth: int, w_in: int, scale: int = 1) -> Stage:
    """A stage of ``family`` that is valid after ``w_in`` channels (drawn until one is)."""
    while True:
        stage = FAMILIES[family](depth=depth, stride=rng.choice((1, 2)),
                                 se=rng.choice((0.0, 0.0625, 0.25)),
                                 **FAMILY_PARAMS[family](rng, scale))
        try:
            stage.check(w_in)
            return stage
        except ConfigError:
            continue


def random_network(rng: random.Random, family: str, depths: list[int],
                   scale: int = 1) -> Network:
    """A network of stages of ``family`` with the given depths; stem and head drawn too."""
    stem = Stem(rng.choice(STEMS), scale * rng.randrange(8, 33), rng.choice(tuple(ACTIVATIONS)),
                norm=rng.random() < 0.8)
    stages, w_in = [], stem.width
    for depth in depths:
        stages.append(random_stage(rng, family, depth, w_in, scale))
        w_in = stages[-1].out_width(w_in)
    head = Head(width=scale * rng.choice((0, 32)), act=rng.choice(tuple(ACTIVATIONS)),
                preact=rng.random() < 0.5, dropout=rng.choice((0.0, 0.2)))
    return Network(tuple(stages), stem, head).validate()
