"""Small, exact edits of an ONNX graph's interface: retype an input or output behind a Cast."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def consumers(graph: onnx.GraphProto, name: str) -> list[onnx.NodeProto]:
    return [node for node in graph.node if name in node.input]


def rename_uses(graph: onnx.GraphProto, old: str, new: str, skip: set[int] | None = None) -> None:
    """Points every node input (and graph output) that reads `old` at `new`."""
    skip = skip or set()
    for node in graph.node:
        if id(node) in skip:
            continue
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
    for output in graph.output:
        if output.name == old:
            output.name = new


def graph_input(graph: onnx.GraphProto, name: str) -> onnx.ValueInfoProto:
    for value in graph.input:
        if value.name == name:
            return value
    raise KeyError(f"the graph has no input {name!r} (it has {', '.join(v.name for v in graph.input)})")


def graph_output(graph: onnx.GraphProto, name: str) -> onnx.ValueInfoProto:
    for value in graph.output:
        if value.name == name:
            return value
    raise KeyError(f"the graph has no output {name!r} (it has {', '.join(v.name for v in graph.output)})")


def retype_input(graph: onnx.GraphProto, name: str, elem_type: int, inner_type: int) -> None:
    """The input now arrives as `elem_type`; a Cast at the top hands the body its old `inner_type`."""
    value = graph_input(graph, name)
    value.type.tensor_type.elem_type = elem_type
    inner = f"{name}__as_inner"
    rename_uses(graph, name, inner)
    graph.node.insert(0, helper.make_node("Cast", [name], [inner], to=inner_type, name=f"{name}__cast_in"))


def retype_output(graph: onnx.GraphProto, name: str, elem_type: int) -> None:
    """The output now leaves as `elem_type`, cast from what the body computes."""
    value = graph_output(graph, name)
    inner = f"{name}__from_body"
    for node in graph.node:
        for i, out in enumerate(node.output):
            if out == name:
                node.output[i] = inner
        for i, inp in enumerate(node.input):
            if inp == name:
                node.input[i] = inner
    value.type.tensor_type.elem_type = elem_type
    graph.node.append(helper.make_node("Cast", [inner], [name], to=elem_type, name=f"{name}__cast_out"))


def float16_weights(graph: onnx.GraphProto) -> None:
    """Stores every float32 initializer as float16, cast back to float32 where it is read."""
    kept = []
    casts = []
    for init in list(graph.initializer):
        if init.data_type != TensorProto.FLOAT:
            kept.append(init)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), name=f"{init.name}__fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT, name=f"{init.name}__cast"))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for node in reversed(casts):
        graph.node.insert(0, node)


def float_io_names(graph: onnx.GraphProto) -> tuple[list[str], list[str]]:
    inputs = [v.name for v in graph.input if v.type.tensor_type.elem_type == TensorProto.FLOAT]
    outputs = [v.name for v in graph.output if v.type.tensor_type.elem_type == TensorProto.FLOAT]
    return inputs, outputs


def float16_interface(model: onnx.ModelProto) -> None:
    """Every float32 input and output becomes float16, as Optimum's `--dtype fp16` exports them."""
    graph = model.graph
    inputs, outputs = float_io_names(graph)
    for name in inputs:
        retype_input(graph, name, TensorProto.FLOAT16, TensorProto.FLOAT)
    for name in outputs:
        retype_output(graph, name, TensorProto.FLOAT16)
    del graph.value_info[:]
