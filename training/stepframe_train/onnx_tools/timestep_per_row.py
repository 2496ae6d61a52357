"""Rewrites a UNet that takes one scalar `timestep` per call to take `timestep` [batch].

Optimum >= 1.24 exports SD UNets with a scalar timestep: diffusers' forward unsqueezes it to [1]
and expands it to the batch, so every row of a call runs at the same timestep and concurrent
sequences at different steps cannot share calls. The rewrite gives the graph input the shape
[batch] and removes the Unsqueeze, so the Expand that follows becomes a no-op on a tensor that
already has one timestep per row. Any Casts between the input and the Unsqueeze are kept.

    /usr/bin/python3 -m stepframe_train.onnx_tools.timestep_per_row unet/model.onnx unet/model.per_row.onnx

It refuses, naming the node, when the graph does not read its timestep that way.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import onnx
from onnx import numpy_helper

from .graph_edit import consumers, graph_input, rename_uses

# Nodes that keep a tensor's shape, which may sit between the timestep input and its Unsqueeze.
_SHAPE_KEEPING = {"Cast", "Identity"}


class PatternNotFound(ValueError):
    """The graph reads its timestep in a way the rewrite does not know."""


def _constant_ints(graph: onnx.GraphProto, name: str) -> list[int] | None:
    for init in graph.initializer:
        if init.name == name:
            return [int(v) for v in numpy_helper.to_array(init).reshape(-1)]
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return [int(v) for v in numpy_helper.to_array(node.attribute[0].t).reshape(-1)]
    return None


def _unsqueezes_to_one(graph: onnx.GraphProto, node: onnx.NodeProto) -> bool:
    if node.op_type == "Unsqueeze":
        axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
        if axes is None and len(node.input) > 1:
            axes = _constant_ints(graph, node.input[1])
        return axes in ([0], [-1])
    if node.op_type == "Reshape" and len(node.input) > 1:
        return _constant_ints(graph, node.input[1]) in ([1], [-1])
    return False


def _drop_if_unused(graph: onnx.GraphProto, names) -> None:
    """The removed node's axes or shape operand, when nothing else reads it."""
    for name in names:
        if consumers(graph, name):
            continue
        for node in [n for n in graph.node if n.op_type == "Constant" and name in n.output]:
            graph.node.remove(node)
        for init in [i for i in graph.initializer if i.name == name]:
            graph.initializer.remove(init)


def convert(model: onnx.ModelProto, input_name: str = "timestep") -> onnx.ModelProto:
    graph = model.graph
    value = graph_input(graph, input_name)
    dims = value.type.tensor_type.shape.dim
    if len(dims) != 0:
        raise PatternNotFound(f"input {input_name!r} already has rank {len(dims)}; only a scalar timestep needs converting")
    current = input_name
    while True:
        readers = consumers(graph, current)
        if len(readers) != 1:
            names = ", ".join(f"{n.op_type} {n.name!r}" for n in readers) or "nothing"
            raise PatternNotFound(f"{current!r} is read by {names}; expected one Unsqueeze (axes [0]) as diffusers' UNet exports it")
        node = readers[0]
        if node.op_type in _SHAPE_KEEPING:
            current = node.output[0]
            continue
        if not _unsqueezes_to_one(graph, node):
            raise PatternNotFound(f"{current!r} goes to {node.op_type} {node.name!r}, not to an Unsqueeze to [1] (axes [0]) as diffusers' UNet exports it")
        break
    # The Unsqueeze's output is now the per-row tensor itself; the Expand after it keeps its shape.
    rename_uses(graph, node.output[0], current, skip={id(node)})
    graph.node.remove(node)
    _drop_if_unused(graph, node.input[1:])
    value.type.tensor_type.shape.dim.add().dim_param = "batch"
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a UNet model.onnx with a scalar timestep")
    parser.add_argument("target", type=Path, help="where to write the rewritten model (may be the same file)")
    parser.add_argument("--input", default="timestep", help="the timestep input's name")
    args = parser.parse_args(argv)
    try:
        model = convert(onnx.load(str(args.source)), args.input)
    except (PatternNotFound, KeyError) as error:
        print(f"{args.source}: {error}", file=sys.stderr)
        return 2
    external = any(init.data_location == onnx.TensorProto.EXTERNAL for init in model.graph.initializer)
    if external:
        onnx.save_model(model, str(args.target), save_as_external_data=True, all_tensors_to_one_file=True, location=args.target.name + "_data")
    else:
        onnx.save_model(model, str(args.target))
    print(f"wrote {args.target}: input {args.input!r} now takes [batch]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
