"""The SD fine-tuning and export at SD 1.5's real size, on random weights, measured on this machine:
  1. random SD 1.5-shaped checkpoints (random_checkpoints), loaded through the same code as real ones;
  2. fine-tuning steps at 512×512 with gradient checkpointing on CPU (fp32, full UNet, concatenation
     fuser, batch 1): time per step and peak RSS (a child process's maximum resident set);
  3. export of that run: fp32 with external data, and fp16: time and bundle size;
  4. what a GPU run would hold by precision, from the parameter counts (weights, gradients, AdamW).
Writes WORK/real-size-training.json; the bundles go to WORK/models for bench/realSizeBench.ts.

    /usr/bin/python3 -m stepframe_train.sd.bench_real_size --work /tmp/sd15-bench
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

WORLD = Path(__file__).resolve().parents[2] / "world_test"


_MEASURED = """
import resource, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
finally:
    print(f"PEAK_RSS_KIB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
"""


def _run(args: list[str]) -> tuple[str, float, float]:
    """Runs a stepframe_train module in a child of its own; returns its output, wall seconds and its peak RSS in GiB."""
    started = time.time()
    out = subprocess.run([sys.executable, "-c", _MEASURED, *args], cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True)
    print(out.stdout, end="", flush=True)
    if out.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({out.returncode}): {out.stderr[-2000:]}")
    peak = int(re.findall(r"PEAK_RSS_KIB (\d+)", out.stderr)[-1])
    return out.stdout, time.time() - started, peak / 2**20


def _folder_gib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**30


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--train-unet", default="all")
    p.add_argument("--stages", default="checkpoints,finetune,export", help="comma-separated; each stage's result is saved as it ends, "
                   "and a stage already in WORK/real-size-training.json is skipped (the run is resumable)")
    args = p.parse_args(argv)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    results_file = work / "real-size-training.json"
    results: dict = json.loads(results_file.read_text()) if results_file.exists() else {}

    def save() -> None:
        results_file.write_text(json.dumps(results, indent=2) + "\n")

    stages = args.stages.split(",")
    sd, clip = work / "checkpoints" / "sd", work / "checkpoints" / "clip-vision"
    if "checkpoints" in stages and "parameters" not in results:
        out, seconds, _ = _run(["stepframe_train.sd.random_checkpoints", "--preset", "sd15", "--out", str(work / "checkpoints")])
        results["parameters"] = json.loads(out.strip().splitlines()[-1])
        results["random_checkpoints_s"] = round(seconds)
        save()
    split = work / "split"
    if not split.exists():
        split.mkdir(parents=True)
        recipes = json.loads((WORLD / "recipes.json").read_text())["recipes"][:2]
        (split / "recipes.json").write_text(json.dumps({"recipes": recipes}))
        for step in (s for r in recipes for s in r["steps"]):
            shutil.copy(WORLD / step["image"], split / step["image"])

    run = work / "run"
    if "finetune" in stages and "finetune" not in results:
        shutil.rmtree(run, ignore_errors=True)
        out, seconds, peak = _run(["stepframe_train.sd.finetune", "--base", str(sd), "--image-encoder", str(clip), "--data", str(split),
                                   "--fuser", "concatenation", "--out", str(run), "--steps", str(args.steps), "--batch", "1", "--log-every", "1",
                                   "--gradient-checkpointing", "--train-unet", args.train_unet, "--resolution", "512"])
        averages = [float(x) for x in re.findall(r"([\d.]+)s/step", out)]
        step_times = [averages[0]] + [averages[i] * (i + 1) - averages[i - 1] * i for i in range(1, len(averages))]
        trainable = float(re.search(r"([\d.]+)M trainable", out).group(1)) * 1e6
        results["finetune"] = {"resolution": 512, "batch": 1, "train_unet": args.train_unet, "gradient_checkpointing": True, "precision": "fp32",
                               "step_seconds": [round(t, 1) for t in step_times], "peak_rss_gib": round(peak, 1), "process_seconds": round(seconds),
                               "trainable_parameters": trainable}
        save()

    if "export" in stages:
        for name, flags, key in (("sd15-concatenation", ["--external-data"], "export_fp32"), ("sd15-concatenation-fp16", ["--fp16"], "export_fp16")):
            if key in results:
                continue
            models = work / ("models" if key == "export_fp32" else "models-fp16")
            _, seconds, peak = _run(["stepframe_train.sd.export", "--base", str(sd), "--image-encoder", str(clip), "--run", str(run),
                                     "--out", str(models), "--name", name, *flags])
            results[key] = {"seconds": round(seconds), "bundle_gib": round(_folder_gib(models / name), 2), "peak_rss_gib": round(peak, 1)}
            save()

    # What a single-GPU run holds before activations: trainable weights in fp32 (master copy), their
    # gradients (fp32) and AdamW's two moments (fp32), plus the frozen models in the compute dtype.
    params = results["parameters"]
    trainable = params["unet"] if args.train_unet == "all" else results.get("finetune", {}).get("trainable_parameters", params["unet"])
    frozen = params["text_encoder"] + params["image_encoder"] + params["vae"] + (params["unet"] - trainable)
    results["gpu_static_gib"] = {
        precision: round((trainable * 16 + frozen * width) / 2**30, 1) for precision, width in (("fp32", 4), ("bf16", 2), ("fp16", 2))
    }
    save()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
