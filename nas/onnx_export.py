"""A network as an ONNX file with a dynamic batch dimension, checked in ONNX Runtime against the
PyTorch module it came from, and, for a RegNet, the equivalent pycls config.

The file is written by torch's TorchScript-based exporter (opset 17): it exports these
networks in a fraction of a second where the dynamo-based one takes about ten, and every file is
checked anyway: ONNX Runtime's output on random input, at two batch sizes, must equal the
module's within ``TOLERANCE`` in fp32 (absolute for logits up to 1, relative to the largest
logit beyond: a freshly initialized RegNetX-400MF has logits near 200, where torch's own fp32
result is 8e-5 from its fp64 one), or nothing is written. Needs the ``onnx`` extra
(``pip install -e '.[onnx]'``: onnx and onnxruntime).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path
from typing import Any

import yaml

from nas.config import Network
from nas.errors import ConfigError
from nas.export import ExportError, refuse_overwrite
from nas.generators import regnet

TOLERANCE = 1e-4  # largest absolute difference of ONNX Runtime's logits from PyTorch's (fp32)
OPSET = 17
CHECK_BATCHES = (1, 3)


def write_onnx(config: Network, path: Path, num_classes: int = 1000,
               state_dict: dict | None = None, resolution: int = 224, force: bool = False
               ) -> float:
    """Write the network (with ``state_dict``, else freshly initialized) to ``path`` and return
    the largest difference of ONNX Runtime's outputs from the module's, divided by the largest
    logit when that is above 1; ExportError, with the file left unwritten, if it exceeds
    TOLERANCE."""
    import torch

    from nas.network import build

    session_type = _onnxruntime().InferenceSession
    path = Path(path)
    refuse_overwrite([path], force)
    model = build(config, num_classes).eval()
    if state_dict is not None:
        model.load_state_dict(state_dict)
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randn(b, 3, resolution, resolution, generator=generator)
              for b in CHECK_BATCHES]
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        to_onnx(model, inputs[0], str(tmp), dynamic_batch=True)
        session = session_type(str(tmp), providers=["CPUExecutionProvider"])
        with torch.no_grad():
            difference = max(_difference(session.run(None, {"input": x.numpy()})[0],
                                         model(x).numpy()) for x in inputs)
        if not difference <= TOLERANCE:
            raise ExportError(f"{path}: ONNX Runtime's output differs from PyTorch's by "
                              f"{difference:.3g} (more than {TOLERANCE:g}); nothing written")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return difference


def to_onnx(module, example, target, dynamic_batch: bool = False) -> None:
    """Export ``module`` traced on ``example`` to ``target`` (a path or a binary file) by torch's
    TorchScript exporter at OPSET, its input named ``input`` and its output ``logits``."""
    import torch

    axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter's deprecation notices
        torch.onnx.export(module, (example,), target, input_names=["input"],
                          output_names=["logits"], opset_version=OPSET, dynamo=False,
                          dynamic_axes=axes)


def _difference(output, reference) -> float:
    """Largest absolute difference, relative to the largest logit when that is above 1."""
    return float(abs(output - reference).max() / max(1.0, abs(reference).max()))


def _onnxruntime():
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime
    except ImportError:
        raise ExportError("ONNX export needs onnx and onnxruntime: pip install -e '.[onnx]'") \
            from None
    return onnxruntime


def pycls_config(config: Network, values: dict[str, Any], num_classes: int = 1000
                 ) -> dict[str, Any] | None:
    """The pycls config (MODEL and REGNET sections) of a RegNet of ResNeXt bottlenecks made by
    the RegNet rule from ``values`` (d, w0, wa, wm, group_w, bot_mul, se), or None when the
    values do not give exactly ``config`` in pycls's terms (another family, stem or head)."""
    rule = {k: values.get(k) for k in ("d", "w0", "wa", "wm", "group_w")}
    if None in rule.values() or values.get("block", "resnext") != "resnext":
        return None
    bot_mul, se = float(values.get("bot_mul", 1.0)), float(values.get("se", 0.0))
    stem, head = config.stem, config.head
    if (stem.kind, stem.act, stem.norm) != ("simple", "relu", True) \
            or (head.width, head.preact, head.dropout) != (0, False, 0.0):
        return None
    try:
        if regnet(int(rule["d"]), int(rule["w0"]), float(rule["wa"]), float(rule["wm"]),
                  group_w=int(rule["group_w"]), bot_mul=bot_mul, se=se,
                  stem={"width": stem.width}) != config:
            return None  # e.g. another shortcut, or a stage the values do not make
    except ConfigError:  # values the rule refuses
        return None
    regnet_section = {"STEM_TYPE": "simple_stem_in", "STEM_W": stem.width,
                      "BLOCK_TYPE": "res_bottleneck_block", "STRIDE": 2,
                      "DEPTH": int(rule["d"]), "W0": int(rule["w0"]), "WA": float(rule["wa"]),
                      "WM": float(rule["wm"]), "GROUP_W": int(rule["group_w"]),
                      "BOT_MUL": bot_mul, "SE_ON": se > 0}
    if se > 0:
        regnet_section["SE_R"] = se
    return {"MODEL": {"TYPE": "regnet", "NUM_CLASSES": num_classes}, "REGNET": regnet_section}


def pycls_text(pycls: dict[str, Any]) -> str:
    """The pycls config file's text."""
    return ("# pycls config of the exported RegNet (github.com/facebookresearch/pycls): train "
            "it at ImageNet scale with pycls's tools\n" + yaml.safe_dump(pycls, sort_keys=False))


def write_pycls(path: Path, pycls: dict[str, Any]) -> None:
    Path(path).write_text(pycls_text(pycls))
