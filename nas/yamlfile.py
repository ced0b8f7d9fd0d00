"""YAML files read safely: no aliases, at most a megabyte, every error one ConfigError line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nas.errors import ConfigError

MAX_YAML_BYTES = 1 << 20  # configs, spaces and run.yaml files are a few kB


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases: a few lines of anchors and aliases can stand for
    an exponentially large value (an alias bomb), and no config or space needs them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


def parse_yaml(text: str | bytes, source: str = "YAML") -> Any:
    """Parse YAML text without aliases, turning any malformed input into one ConfigError line
    that starts with ``source``."""
    try:
        return yaml.load(text, _Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]  # e.g. ReaderError's
        raise ConfigError(f"{source}: malformed YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{source}: malformed YAML: nested too deeply") from None
    except ValueError as e:  # an integer of more digits than Python converts
        raise ConfigError(f"{source}: malformed YAML: {str(e).split(':')[0]}") from None


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file of at most MAX_YAML_BYTES, turning a missing, oversized or malformed
    file into one ConfigError line."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            text = f.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_YAML_BYTES >> 20} MB; not a config")
    return parse_yaml(text, str(path))
