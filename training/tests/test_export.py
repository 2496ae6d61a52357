import json
from pathlib import Path

import onnx
import pytest

from stepframe_train.bundle import SHARED_COMPONENTS
from stepframe_train.export import main as export_main
from stepframe_train.manifest import validate_manifest
from stepframe_train.models.fusers import FUSER_KINDS

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "test" / "fixtures" / "bundles"
OPTIMUM_LAYOUT = ("unet/model.onnx", "scheduler/scheduler_config.json")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles")
    assert export_main(["--random", "--seed", "7", "--preset", "tiny", "--out", str(out), "--parity"]) == 0
    return out


def test_export_writes_every_bundle_with_valid_onnx_and_manifest(exported):
    for name in SHARED_COMPONENTS:
        onnx.checker.check_model(str(exported / "shared" / name / "model.onnx"))
    for kind in FUSER_KINDS:
        bundle = exported / kind
        for rel in OPTIMUM_LAYOUT:
            assert (bundle / rel).is_file(), f"{kind}: {rel} missing"
        manifest = json.loads((bundle / "stepframe.json").read_text())
        assert validate_manifest(manifest) == []
        assert manifest["fuser"]["kind"] == kind
        for name, entry in manifest["components"].items():
            path = (bundle / entry["path"]).resolve()
            assert path.is_file(), f"{kind}: {name} points at missing {entry['path']}"
            onnx.checker.check_model(str(path))
            assert (path.parent / "parity.json").is_file()
        assert (bundle / manifest["tokenizer"]["path"] / "vocab.json").is_file()
        assert ("fuser" in manifest["components"]) == (kind != "baseline")


def test_shared_components_are_stored_once_and_referenced(exported):
    for kind in FUSER_KINDS:
        manifest = json.loads((exported / kind / "stepframe.json").read_text())
        assert manifest["components"]["text_encoder"]["path"] == "../shared/text_encoder/model.onnx"
        assert not (exported / kind / "text_encoder").exists()


def test_seeded_export_is_byte_identical(exported, tmp_path):
    assert export_main(["--random", "--seed", "7", "--preset", "tiny", "--fusers", "attend_to_image", "--out", str(tmp_path)]) == 0
    for rel in ("shared/text_encoder/model.onnx", "shared/vae_decoder/model.onnx", "attend_to_image/unet/model.onnx", "attend_to_image/fuser/model.onnx"):
        assert (tmp_path / rel).read_bytes() == (exported / rel).read_bytes(), rel


def test_committed_fixture_bundles_are_what_the_exporter_makes(exported):
    """The TypeScript suite tests against test/fixtures/bundles; regenerate them with `npm run fixtures` if this fails."""
    for kind in FUSER_KINDS:
        fresh = json.loads((exported / kind / "stepframe.json").read_text())
        committed = json.loads((FIXTURES / kind / "stepframe.json").read_text())
        for name, entry in fresh["components"].items():
            assert committed["components"][name]["weights_sha256"] == entry["weights_sha256"], f"{kind}/{name}"


@pytest.mark.parametrize(
    "mutate,field",
    [
        (lambda m: m.pop("format_version"), "format_version"),
        (lambda m: m["components"].pop("unet"), "components.unet"),
        (lambda m: m["latent"].update(scaling_factor=-1), "latent.scaling_factor"),
        (lambda m: m["conditioning"]["first_step"].update(kind="noise"), "conditioning.first_step.kind"),
        (lambda m: m["components"].pop("fuser"), "components.fuser"),
        (lambda m: m["components"]["unet"]["inputs"][0].pop("dtype"), "components.unet.inputs.0.dtype"),
        (lambda m: m["components"].update(vae=m["components"]["unet"]), "components"),
    ],
)
def test_manifest_validation_names_the_bad_field(exported, mutate, field):
    manifest = json.loads((exported / "concatenation" / "stepframe.json").read_text())
    mutate(manifest)
    assert any(field in problem for problem in validate_manifest(manifest))
