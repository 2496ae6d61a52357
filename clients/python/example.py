"""Generate a short recipe sequence and save one PNG per step.

    /usr/bin/python3 clients/python/example.py --address localhost:50051 --out out/ "chop the carrots" "add the carrots to the pan"
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stepframe_client import StepframeClient


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("steps", nargs="*", default=["chop the carrots", "add the carrots to the pan", "stir everything together"])
    parser.add_argument("--address", default="localhost:50051")
    parser.add_argument("--out", type=Path, default=Path("stepframe-out"))
    parser.add_argument("--model", default="")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--inference-steps", type=int, default=0)
    args = parser.parse_args()

    client = StepframeClient(args.address)
    try:
        models = client.list_models()
        print("models:", ", ".join(m.name for m in models.models), "(default", models.default_model + ")")
        fields = {"model": args.model, "num_inference_steps": args.inference_steps}
        if args.seed is not None:
            fields["seed"] = args.seed
        args.out.mkdir(parents=True, exist_ok=True)
        for event in client.generate(args.steps, timeout=600, **fields):
            kind = event.WhichOneof("event")
            if kind == "image":
                path = args.out / f"step-{event.image.step_index + 1:02d}.png"
                path.write_bytes(event.image.data)
                print(f"step {event.image.step_index + 1}: {event.image.step_text!r} -> {path} ({event.image.timings.total_ms:.0f} ms)")
            elif kind == "summary":
                print(f"{event.summary.images} images, seed {event.summary.seed}, {event.summary.total_ms:.0f} ms")
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
