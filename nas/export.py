"""A network config written out as one standalone PyTorch file that depends only on torch.

The file holds the source of the block classes the network uses (their ``complexity``
methods left out), taken from this package so the exported modules are the tool's own, the
config as a literal, a ``Net`` class that builds every stage and block by name (``s2.b1``, as
the tool does, so state dicts are interchangeable), and ``build_model``.
"""

from __future__ import annotations

import ast
import inspect
import os
import pprint
import textwrap
from collections.abc import Mapping
from pathlib import Path

from nas.config import Network
from nas.errors import NasError
from nas.evaluate.data import MEAN, STD
from nas.network import HeadModule, StemModule, build, init_weights, layout

IMPORTS = {"torch": "import torch", "nn": "from torch import nn"}


class ExportError(NasError):
    """An export that would overwrite files, or weights that do not fit the network."""


def export_source(config: Network, num_classes: int = 1000, weights: str | None = None,
                  title: str = "") -> str:
    """The standalone file's text; ``weights``: a file name beside it to load by default."""
    units = layout(config.validate(), num_classes)
    roots = [StemModule, *dict.fromkeys(u.cls for _, u in units), HeadModule, init_weights]
    definitions = _definitions(roots)
    body = "\n\n\n".join([*definitions, _net_class(config, units), _builder(num_classes,
                                                                          weights)])
    used = [line for name, line in IMPORTS.items() if _mentions(body, name)]
    title = (title or "A network exported by nas").replace("\\", "\\\\").replace('"', '\\"')
    inputs = ("Its weights expect RGB images scaled to [0, 1], then normalized per channel "
              "as\n``(x - MEAN) / STD``, as they were trained.\n" if weights else "")
    head = (f'"""{title}: standalone PyTorch code.\n\n'
            f'Build it with ``build_model()``; it needs nothing but torch.\n{inputs}"""\n\n'
            "from __future__ import annotations\n\n"
            + ("from pathlib import Path\n\n" if weights else "")
            + "\n".join(used) + "\n\n"
            + "CONFIG = " + pprint.pformat(config.to_dict(), width=96, sort_dicts=False) + "\n"
            + (f"MEAN = {MEAN}\nSTD = {STD}\n" if weights else ""))
    return head + "\n\n" + body + "\n"


def _definitions(roots: list) -> list[str]:
    """Sources of ``roots`` and of the package's classes, functions and constants they use,
    dependencies first."""
    done: dict[str, str] = {}

    def visit(name: str, obj, module) -> None:
        if name in done:
            return
        done[name] = ""  # placeholder against cycles
        source = _source(name, obj, module)
        for used in sorted(_names(source)):
            target = vars(module).get(used)
            if target is not None and _ours(used, target, module):
                visit(used, target, inspect.getmodule(target) if callable(target) else module)
        done.pop(name)
        done[name] = source

    for root in roots:
        visit(root.__name__, root, inspect.getmodule(root))
    return list(done.values())


def _ours(name: str, obj, module) -> bool:
    """Whether ``name`` is defined by this package (a class, function or module constant)."""
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return obj.__module__.startswith("nas.")
    return module.__name__.startswith("nas.") and name.isupper()


def _source(name: str, obj, module) -> str:
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return _without_complexity(textwrap.dedent(inspect.getsource(obj)))
    tree = ast.parse(inspect.getsource(module))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name
                                                for t in node.targets):
            return ast.get_source_segment(inspect.getsource(module), node)
    raise LookupError(name)


def _without_complexity(source: str) -> str:
    """A class's source with its ``complexity`` method (and decorators) cut out."""
    lines = source.splitlines()
    tree = ast.parse(source)
    cut: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "complexity":
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            cut.update(range(first - 1, node.end_lineno))
            if first - 2 >= 0 and not lines[first - 2].strip():
                cut.add(first - 2)  # the blank line before it
    return "\n".join(line for i, line in enumerate(lines) if i not in cut).rstrip()


def _names(source: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}


def _mentions(text: str, name: str) -> bool:
    return name in _names(text) or any(
        isinstance(n, ast.Attribute) and getattr(n.value, "id", None) == name
        for n in ast.walk(ast.parse(text)))


def _net_class(config: Network, units) -> str:
    lines = ["class Net(nn.Module):",
             f'    """{len(config.stages)} stages: '
             + ", ".join(f"{s.block} x{s.depth}" for s in config.stages) + '."""',
             "",
             "    def __init__(self, num_classes: int = 1000):",
             "        super().__init__()"]
    widths = config.widths()
    for name, unit in units:
        stage, _, block = name.partition(".")
        kwargs = dict(unit.kwargs)
        if name == "head":
            kwargs["num_classes"] = _Raw("num_classes")
        if block == "b1":
            i = int(stage[1:]) - 1
            s = config.stages[i]
            lines += [f"        # {stage}: {s.block}, depth {s.depth}, width {widths[i + 1]}, "
                      f"stride {s.stride}",
                      f"        self.{stage} = nn.Sequential()"]
        lines += _call(f"self.{name}", unit.cls.__name__, kwargs)
    lines += ["        init_weights(self)", "",
              "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
              "        x = self.stem(x)"]
    lines += [f"        x = self.s{i}(x)" for i in range(1, len(config.stages) + 1)]
    lines += ["        return self.head(x)"]
    return "\n".join(lines)


def _call(target: str, cls: str, kwargs: dict) -> list[str]:
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    line = f"        {target} = {cls}({args})"
    if len(line) <= 100:
        return [line]
    wrapped = textwrap.wrap(args, 100 - 12, break_long_words=False, break_on_hyphens=False)
    return [f"        {target} = {cls}("] + [f"            {w}" for w in wrapped] + ["        )"]


def _builder(num_classes: int, weights: str | None) -> str:
    if not weights:
        return (f"def build_model(num_classes: int = {num_classes}) -> Net:\n"
                '    """The network, freshly initialized."""\n'
                "    return Net(num_classes)")
    return (f"def build_model(num_classes: int = {num_classes}, weights: str | None = "
            f"str(Path(__file__).with_name({weights!r}))) -> Net:\n"
            '    """The network with its proxy-trained weights (``weights=None``: fresh)."""\n'
            "    model = Net(num_classes)\n"
            "    if weights:\n"
            '        model.load_state_dict(torch.load(weights, map_location="cpu", '
            'weights_only=True))\n'
            "    return model")


class _Raw(str):
    """A name written into the generated code as is, not as a string literal."""

    def __repr__(self) -> str:
        return str(self)


def refuse_overwrite(paths: list[Path], force: bool, same: Mapping[Path, str] = {}) -> None:
    """ExportError for a path that is a directory, or, without ``force``, one that exists,
    unless it holds exactly the text ``same`` gives for it (the config YAMLs that the Python
    and ONNX exports of one network both write)."""
    for path in paths:
        if path.is_dir():
            raise ExportError(f"{path}: is a directory; give the name of the file to write")
    existing = [p for p in paths if p.exists() and not _holds(p, same.get(p))]
    if existing and not force:
        raise ExportError(f"{existing[0]}: already exists; give --force to overwrite it")


def _holds(path: Path, text: str | None) -> bool:
    try:
        return text is not None and path.read_text() == text
    except (OSError, UnicodeDecodeError):
        return False


def write_export(config: Network, path: Path, num_classes: int = 1000,
                 state_dict: dict | None = None, title: str = "", force: bool = False
                 ) -> list[Path]:
    """Write ``path`` (the model file), its config YAML beside it and, with ``state_dict``,
    the weights file, each atomically; existing files only with ``force``. Returns the paths
    written."""
    path = Path(path)
    written = [path, path.with_suffix(".yaml")] + [path.with_suffix(".pt")] * bool(state_dict)
    refuse_overwrite(written, force, {path.with_suffix(".yaml"): config.to_yaml()})
    path.parent.mkdir(parents=True, exist_ok=True)
    if state_dict is not None:
        import torch

        _replace(path.with_suffix(".pt"), lambda tmp: torch.save(state_dict, tmp))
    weights = path.with_suffix(".pt").name if state_dict is not None else None
    source = export_source(config, num_classes, weights, title)
    _replace(path, lambda tmp: tmp.write_text(source))
    _replace(path.with_suffix(".yaml"), config.save)
    return written


def _replace(path: Path, write) -> None:
    """Call ``write`` on a temporary file beside ``path``, then move it onto ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_weights(path: Path, config: Network, num_classes: int) -> dict:
    """The state dict saved at ``path`` (tensors only: ``weights_only``), checked against the
    network's; ExportError names the file and the first tensor that is missing or misshapen."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a torch file, or objects other than tensors
        reason = (str(e).splitlines() or [""])[0][:200]
        raise ExportError(f"{path}: not a readable weights file ({type(e).__name__}: "
                          f"{reason})") from None
    if not isinstance(state, dict):
        raise ExportError(f"{path}: expected a state dict, found {type(state).__name__}")
    expected = build(config, num_classes).state_dict()
    for name, tensor in expected.items():
        found = state.get(name)
        if not isinstance(found, torch.Tensor) or found.shape != tensor.shape:
            shape = tuple(found.shape) if isinstance(found, torch.Tensor) else "nothing"
            raise ExportError(f"{path}: tensor {name} should have shape {tuple(tensor.shape)}, "
                              f"found {shape}")
    extra = sorted(map(str, set(state) - set(expected)))
    if extra:
        raise ExportError(f"{path}: tensor {extra[0]} is not part of the network")
    return state
