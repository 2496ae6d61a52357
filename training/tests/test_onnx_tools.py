"""The scalar-timestep converter and the export-variant builder: graph structure (numbers are checked through onnxruntime-node)."""
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from stepframe_train.onnx_tools import export_variants, timestep_per_row

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "test" / "fixtures" / "bundles"


def _timestep(model: onnx.ModelProto) -> onnx.ValueInfoProto:
    return next(v for v in model.graph.input if v.name == "timestep")


def test_the_scalar_variant_reads_its_timestep_as_diffusers_exports_it():
    model = export_variants.scalar_timestep(onnx.load(str(FIXTURES / "baseline" / "unet" / "model.onnx")))
    assert len(_timestep(model).type.tensor_type.shape.dim) == 0
    readers = [n.op_type for n in model.graph.node if "timestep" in n.input]
    assert readers == ["Unsqueeze"]


@pytest.mark.parametrize("fp16", [False, True])
def test_converter_gives_a_per_row_timestep_and_removes_the_unsqueeze(fp16):
    model = export_variants.scalar_timestep(onnx.load(str(FIXTURES / "baseline" / "unet" / "model.onnx")))
    if fp16:
        # Optimum fp16: a Cast sits between the input and the Unsqueeze.
        from stepframe_train.onnx_tools.graph_edit import float16_interface

        float16_interface(model)
    converted = timestep_per_row.convert(model)
    dims = _timestep(converted).type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch"]
    assert not any(n.op_type == "Unsqueeze" and n.name == "timestep_unsqueeze" for n in converted.graph.node)
    onnx.checker.check_model(converted)


def test_converter_refuses_an_unknown_pattern_naming_the_node():
    graph = helper.make_graph(
        [helper.make_node("Mul", ["timestep", "timestep"], ["out"], name="time_scale")],
        "g",
        [helper.make_tensor_value_info("timestep", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [])],
    )
    with pytest.raises(timestep_per_row.PatternNotFound, match="goes to Mul 'time_scale', not to an Unsqueeze"):
        timestep_per_row.convert(helper.make_model(graph))


def test_converter_refuses_a_timestep_that_is_already_per_row():
    with pytest.raises(timestep_per_row.PatternNotFound, match="already has rank 1"):
        timestep_per_row.convert(onnx.load(str(FIXTURES / "baseline" / "unet" / "model.onnx")))


def test_every_variant_is_written_in_its_layout(tmp_path):
    names = export_variants.build_all(export_variants.Fixtures(FIXTURES, export_variants.DEFAULT_TOKENIZER), tmp_path)
    assert len(names) == 12
    fp16 = onnx.load(str(tmp_path / "optimum_fp16" / "text_encoder" / "model.onnx"))
    assert {o.name: o.type.tensor_type.elem_type for o in fp16.graph.output} == {"last_hidden_state": TensorProto.FLOAT16, "pooler_output": TensorProto.FLOAT16}
    assert (tmp_path / "external_data" / "unet" / "model.onnx_data").stat().st_size > 100_000
    hub = onnx.load(str(tmp_path / "hub_int32_input_ids" / "text_encoder" / "model.onnx"))
    assert hub.graph.input[0].type.tensor_type.elem_type == TensorProto.INT32
    projection = onnx.load(str(tmp_path / "clip_vision_projection" / "image_encoder" / "model.onnx"))
    assert [o.name for o in projection.graph.output] == ["last_hidden_state", "image_embeds"]
