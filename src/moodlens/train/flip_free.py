"""Derive the flip-free graph of an exported model whose graph averages each face with its mirror image.

The exported graph runs the network twice, on the face and on its mirror image, and averages the
two softmax outputs. Video gets the mirror images from the next frames instead
(``moodlens.recognition.classifier.EmotionClassifier`` with ``flip="alternate"``), so it needs the
graph of one pass: this keeps every node that the unmirrored branch needs, exactly as exported
(int8 scales included), and drops the mirror branch and the averaging. It is run once when a model
is released, never when a model is loaded; it writes ``NAME.flipfree.onnx`` beside ``NAME.onnx`` and
names it in the model's card (``flip_free_graph``):

    python -m moodlens.train.flip_free src/moodlens/models/default.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

import onnx

from moodlens.card import ModelCard, card_path


def without_flip_average(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose output is the softmax of the unmirrored face alone.

    Raises ``ValueError`` when the graph does not have exactly one mirroring ``Slice`` of the input and
    one ``Softmax`` outside its branch (a model exported without flip averaging, or an ensemble).
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    kept_output = _unmirrored_softmax(graph, _mirror_branch(graph))
    nodes, needed = _nodes_feeding(graph, kept_output)
    output = graph.output[0].name
    for node in nodes:  # the kept softmax now writes the graph's output
        node.output[:] = [output if name == kept_output else name for name in node.output]
    initializers = [t for t in graph.initializer if t.name in needed]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    onnx.checker.check_model(model)
    return model


def _mirror_branch(graph: onnx.GraphProto) -> set[str]:
    """Names of every value computed from the mirror image of the input (the one ``Slice`` of it)."""
    face_input = graph.input[0].name
    mirrors = [n for n in graph.node if n.op_type == "Slice" and face_input in n.input]
    if len(mirrors) != 1:
        raise ValueError(f"expected one mirroring Slice of {face_input!r}, found {len(mirrors)}: "
                         "was the model exported with flip averaging?")
    mirrored = set(mirrors[0].output)
    for node in graph.node:  # nodes are topologically sorted: one sweep follows the branch
        if mirrored.intersection(node.input):
            mirrored.update(node.output)
    return mirrored


def _unmirrored_softmax(graph: onnx.GraphProto, mirrored: set[str]) -> str:
    """The output of the one ``Softmax`` outside the mirror branch."""
    softmaxes = [n for n in graph.node if n.op_type == "Softmax" and n.output[0] not in mirrored]
    if len(softmaxes) != 1:
        raise ValueError(f"expected one Softmax of the unmirrored face, found {len(softmaxes)}")
    return softmaxes[0].output[0]


def _nodes_feeding(graph: onnx.GraphProto, value: str) -> tuple[list[onnx.NodeProto], set[str]]:
    """The nodes ``value`` is computed from, in graph order, and the names of every value they read."""
    needed, nodes = {value}, []
    for node in reversed(graph.node):
        if needed.intersection(node.output):
            nodes.append(node)
            needed.update(node.input)
    return nodes[::-1], needed


def flip_free_path(model: str | Path) -> Path:
    """Where the flip-free graph of ``model`` (``NAME.onnx``) lives: ``NAME.flipfree.onnx`` beside it."""
    model = Path(model)
    return model.with_name(f"{model.stem}.flipfree.onnx")


def write_flip_free_graph(model: str | Path) -> Path:
    """Write the flip-free graph of the ONNX file ``model`` beside it; returns its path."""
    dst = flip_free_path(model)
    onnx.save(without_flip_average(onnx.load(str(model))), str(dst))
    return dst


def write_flip_free(model: str | Path) -> Path:
    """Write the flip-free graph of the ONNX file ``model`` beside it and name it in its card, if it has one."""
    model = Path(model)
    dst = write_flip_free_graph(model)
    card = ModelCard.of_model(model)
    if card is not None:
        card.model_copy(update={"flip_free_graph": dst.name}).save(card_path(model))
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="an exported model with flip averaging in its graph")
    print(write_flip_free(ap.parse_args().model))


if __name__ == "__main__":
    main()
