"""Block families: one module per family, each with its stage value, module and complexity."""

from nas.blocks.base import Stage, Unit
from nas.errors import ConfigError
from nas.blocks.resnext import ResNeXt

FAMILIES: dict[str, type[Stage]] = {cls.block: cls for cls in (ResNeXt,)}

__all__ = ["FAMILIES", "ConfigError", "Stage", "Unit"]
