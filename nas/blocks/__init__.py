"""Block families: one module per family, each with its stage value, module and complexity."""

from nas.blocks.base import Stage, Unit
from nas.blocks.densenet import DenseNet
from nas.blocks.igcv3 import IGCV3
from nas.blocks.mobilenetv2 import MobileNetV2
from nas.blocks.resnext import ResNeXt
from nas.blocks.shufflenetv2 import ShuffleNetV2
from nas.errors import ConfigError

FAMILIES: dict[str, type[Stage]] = {
    cls.block: cls for cls in (ResNeXt, MobileNetV2, ShuffleNetV2, IGCV3, DenseNet)}

__all__ = ["FAMILIES", "ConfigError", "Stage", "Unit"]
