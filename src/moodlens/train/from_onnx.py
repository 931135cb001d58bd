"""Turn a shipped single-network ONNX model back into trainable PyTorch weights.

Used by ``moodlens train --init-from MODEL.onnx`` to continue training a model whose
checkpoint is gone (or fine-tune a shipped one on new data). The exported graph has
BatchNorm folded into each convolution and, for int8 models, weights stored quantised;
this reads the (dequantised) weights, rebuilds the ``EmotionNet`` from the card's recipe
and puts a BatchNorm back behind every convolution, set to reproduce the folded graph
exactly in eval mode and nearly so in train mode (its statistics are measured on ``faces``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from moodlens.card import ModelCard, card_path
from moodlens.recognition.classifier import resolve_model
from moodlens.train.model import EmotionNet


def _dequantised(graph) -> dict[str, np.ndarray]:  # noqa: ANN001 (onnx.GraphProto)
    """Every constant tensor of ``graph`` by name: initialisers and DequantizeLinear outputs."""
    from onnx import numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in values:  # the flip view's alias of a weight
            values[node.output[0]] = values[node.input[0]]
        if node.op_type != "DequantizeLinear" or node.input[0] not in values:
            continue
        q = values[node.input[0]].astype(np.float32)
        scale = values[node.input[1]].astype(np.float32)
        zero = values[node.input[2]].astype(np.float32) if len(node.input) > 2 else np.zeros_like(scale)
        if scale.size > 1:  # per-channel: broadcast along the node's axis (default 1)
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            shape = [1] * q.ndim
            shape[axis] = scale.size
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        values[node.output[0]] = (q - zero) * scale
    return values


def _layers(graph, values: dict[str, np.ndarray], op: str) -> list[tuple[np.ndarray, np.ndarray]]:  # noqa: ANN001
    """(weight, bias) of each distinct ``op`` node in graph order (flip views share weights)."""
    seen: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for node in graph.node:
        if node.op_type == op and id(values[node.input[1]]) not in seen:
            w = values[node.input[1]]
            key = id(w)
            if op == "Gemm" and not any(a.name == "transB" and a.i for a in node.attribute):
                w = w.T
            seen[key] = (w, values[node.input[2]])
    return list(seen.values())


def _card(path: Path) -> ModelCard:
    card = ModelCard.of_model(path)
    if card is None:
        raise ValueError(f"{path}: no model card beside it ({card_path(path)}), so its recipe is unknown")
    if card.ensemble_size > 1:
        raise ValueError(f"{path} is an ensemble of {card.ensemble_size} nets; start from a single net")
    return card


def _modules(net: EmotionNet) -> tuple[list[torch.nn.Conv2d], list[torch.nn.BatchNorm2d], list[torch.nn.Linear]]:
    """The convolutions, their BatchNorms and the dense layers of ``net``, in order."""
    convs = [m for m in net.features.modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in net.features.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    return convs, norms, [m for m in net.head if isinstance(m, torch.nn.Linear)]


def _copy_weights(net: EmotionNet, graph, values: dict[str, np.ndarray], path: Path) -> list[torch.Tensor]:  # noqa: ANN001
    """Put the graph's convolution and dense weights into ``net``; BatchNorm of each convolution becomes
    ``x + bias`` (the folded graph). Returns each convolution's folded bias."""
    convs, norms, linears = _modules(net)
    conv_wb, gemm_wb = _layers(graph, values, "Conv"), _layers(graph, values, "Gemm")
    if len(conv_wb) != len(convs) or len(gemm_wb) != len(linears):
        raise ValueError(f"{path}: {len(conv_wb)} convolutions and {len(gemm_wb)} linear layers do not match "
                         f"the card's recipe ({len(convs)} and {len(linears)})")
    biases = []
    for conv, bn, (w, b) in zip(convs, norms, conv_wb, strict=True):
        conv.weight.copy_(torch.tensor(w))
        bias = torch.tensor(b, dtype=torch.float32)
        biases.append(bias)
        bn.weight.fill_(1.0)
        bn.bias.copy_(bias)
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)  # BN(x) = x + bias: the folded graph
    for lin, (w, b) in zip(linears, gemm_wb, strict=True):
        lin.weight.copy_(torch.tensor(w))
        lin.bias.copy_(torch.tensor(b))
    _copy_head_batchnorm(net, values)
    return biases


def _copy_head_batchnorm(net: EmotionNet, values: dict[str, np.ndarray]) -> None:
    """The head's BatchNorm stays a node of its own in the graph (nothing to fold it into): copy it as is."""
    head_bn = next(m for m in net.head if isinstance(m, torch.nn.BatchNorm1d))
    prefix = next(n.removesuffix("running_mean") for n in values if n.endswith("head.4.running_mean"))
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(head_bn, name).copy_(torch.tensor(values[prefix + name]))


def _renormalise(net: EmotionNet, biases: list[torch.Tensor], faces: np.ndarray) -> None:
    """Measure each convolution's output statistics on ``faces``, then choose BatchNorm parameters that keep
    BN(x) = x + bias in eval mode while normalising with (nearly) the batch statistics training will see."""
    convs, norms, _ = _modules(net)
    stats: list[tuple[torch.Tensor, torch.Tensor]] = []
    hooks = [c.register_forward_hook(lambda _m, _i, out: stats.append(
        (out.mean((0, 2, 3)), out.var((0, 2, 3), unbiased=False)))) for c in convs]
    net(torch.as_tensor(faces, dtype=torch.float32))
    for h in hooks:
        h.remove()
    for bn, bias, (mean, var) in zip(norms, biases, stats, strict=True):
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.copy_(torch.sqrt(var + bn.eps))
        bn.bias.copy_(mean + bias)


def net_from_onnx(model: str | Path, faces: np.ndarray) -> tuple[EmotionNet, ModelCard]:
    """An eval-mode ``EmotionNet`` computing what the ONNX model ``model`` (a shipped name or a path)
    computes for one view, and the model's card. ``faces``: training crops (N, 1, 44, 44), raw
    pixels, a few thousand, to set the restored BatchNorm statistics. Ensembles are refused."""
    import onnx

    path = resolve_model(model)
    card = _card(path)
    cfg = card.training.nets[0].config
    net = EmotionNet(widths=cfg.widths, convs_per_stage=cfg.convs_per_stage, dropout=cfg.dropout).eval()
    graph = onnx.load(str(path)).graph
    with torch.no_grad():
        biases = _copy_weights(net, graph, _dequantised(graph), path)
        _renormalise(net, biases, faces)
    return net, card
