"""Write a complete set of bundles from seeded random weights (test fixtures, benchmark bundles).

Trained bundles are written by train_all's last stage (pipeline/finish.py).

    /usr/bin/python3 -m stepframe_train.export --random --seed 7 --preset tiny --out ../test/fixtures/bundles --parity
    /usr/bin/python3 -m stepframe_train.export --random --seed 7 --preset tiny --fp16 --out /tmp/fixtures-fp16
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from .bundle import BundleSpec, write_bundles
from .clip_tokenizer import ClipTokenizer
from .config import default_stack, tiny_stack
from .models.fuser_registry import ALL_FUSER_KINDS
from .models.fusers import FUSER_KINDS
from .models.text_encoder import compact_token_map
from .stack import Stack, build_fuser_for, build_stack, config_for_fuser
from .models.unet import UNet
from .vocabulary import world_words

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TOKENIZER = REPO / "models" / "shared" / "tokenizer"


def world_token_map(tokenizer_dir: Path, rows: int) -> torch.Tensor:
    tokenizer = ClipTokenizer.load(tokenizer_dir)
    ids = [i for word in world_words() for i in tokenizer.encode(word)[1:-1]]
    return compact_token_map(ids, rows)


def random_bundles(seed: int, preset: str, kinds: tuple[str, ...], tokenizer_dir: Path) -> tuple[Stack, list[BundleSpec]]:
    """Seeded random weights: shared models from `seed`, each bundle's UNet and fuser from its own derived seed."""
    make = {"tiny": tiny_stack, "default": default_stack}[preset]
    base = make("baseline")
    torch.manual_seed(seed)
    shared = build_stack(base, world_token_map(tokenizer_dir, base.text.embedding_rows))
    specs = []
    for kind in kinds:
        torch.manual_seed(seed * 1000 + ALL_FUSER_KINDS.index(kind))
        cfg = config_for_fuser(make(kind), kind)
        specs.append(
            BundleSpec(
                name=kind,
                fuser_kind=kind,
                unet=UNet(cfg.unet),
                fuser=build_fuser_for(cfg),
                image_guidance=kind != "baseline",
                provenance={"weights": "random", "seed": seed, "preset": preset},
            )
        )
    return shared, specs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Trained bundles are exported by train_all (its last stage); this command writes seeded random ones.
    parser.add_argument("--random", action="store_true", required=True, help="seeded random weights (test and benchmark bundles)")
    parser.add_argument("--seed", type=int, default=7, help="seed for --random")
    parser.add_argument("--preset", choices=("tiny", "default"), default="tiny", help="model sizes for --random")
    parser.add_argument("--fusers", default=",".join(FUSER_KINDS),
                        help="comma-separated fuser kinds for --random (default: the paper's six; also: " + ", ".join(ALL_FUSER_KINDS[len(FUSER_KINDS):]) + ")")
    parser.add_argument("--out", type=Path, required=True, help="folder that receives shared/ and one folder per bundle")
    parser.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER, help="folder with CLIP's vocab.json and merges.txt")
    parser.add_argument("--parity", action="store_true", help="also write PyTorch parity fixtures next to each model")
    parser.add_argument("--fp16", action="store_true", help="write float16 exports (float16 weights and float tensors), as Optimum's --dtype fp16 does")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    started = time.perf_counter()
    kinds = tuple(k.strip() for k in args.fusers.split(",") if k.strip())
    unknown = [k for k in kinds if k not in ALL_FUSER_KINDS]
    if unknown:
        parser.error(f"--fusers: unknown kind(s) {', '.join(unknown)}; expected {', '.join(ALL_FUSER_KINDS)}")
    shared, specs = random_bundles(args.seed, args.preset, kinds, args.tokenizer)
    provenance = {"created_by": "stepframe_train.export"}
    if args.fp16 and args.parity:
        parser.error("--parity records float32 PyTorch outputs; export --fp16 without it (the compatibility test compares fp16 with fp32 images)")
    written = write_bundles(args.out, shared, specs, args.tokenizer, provenance, parity_seed=args.seed if args.parity else None)
    if args.fp16:
        from .onnx_tools.float16_bundles import convert_bundles

        convert_bundles(args.out)
    print(f"wrote {len(written)} bundles to {args.out} in {time.perf_counter() - started:.1f}s: {', '.join(p.name for p in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
