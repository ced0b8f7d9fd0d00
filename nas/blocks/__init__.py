"""Block families: one module per family, each with its stage value, module and complexity."""

from nas.blocks.base import Stage, Unit
from nas.blocks.resnext import ResNeXt
from nas.errors import ConfigError

FAMILIES: dict[str, type[Stage]] = {cls.block: cls for cls in (ResNeXt,)}

__all__ = ["FAMILIES", "ConfigError", "Stage", "Unit"]
