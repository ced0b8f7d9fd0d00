"""Block families, one file each (the protocol is in ``nas.blocks.base``), registered here."""

from nas.blocks.base import Stage, Unit
from nas.blocks.basic import Basic
from nas.blocks.densenet import DenseNet
from nas.blocks.igcv3 import IGCV3
from nas.blocks.mobilenetv2 import MobileNetV2
from nas.blocks.resnext import ResNeXt
from nas.blocks.shufflenetv2 import ShuffleNetV2
from nas.errors import ConfigError

FAMILIES: dict[str, type[Stage]] = {
    cls.block: cls for cls in (ResNeXt, MobileNetV2, ShuffleNetV2, IGCV3, DenseNet, Basic)}
DEFAULT_FAMILY = ResNeXt.block  # of a stage or space that names none

__all__ = ["DEFAULT_FAMILY", "FAMILIES", "ConfigError", "Stage", "Unit"]
