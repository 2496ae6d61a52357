from pathlib import Path

import pytest

from stepframe_train.clip_tokenizer import ClipTokenizer

TOKENIZER = Path(__file__).resolve().parents[2] / "models" / "shared" / "tokenizer"

# openai/CLIP SimpleTokenizer ids with BOS/EOS, from the shared tokenizer's README.
EXAMPLES = [
    ("a photo of a cat", [49406, 320, 1125, 539, 320, 2368, 49407]),
    ("Add 1/2 cup of sugar", [49406, 3536, 272, 270, 273, 1937, 539, 5574, 49407]),
    ("Don't overmix; it's fine.", [49406, 847, 713, 1658, 3285, 282, 585, 568, 3797, 269, 49407]),
]


@pytest.mark.parametrize("text,ids", EXAMPLES)
def test_python_tokenizer_matches_clip(text, ids):
    assert ClipTokenizer.load(TOKENIZER).encode(text) == ids


def test_long_text_is_truncated_to_77_ids_keeping_eos():
    ids = ClipTokenizer.load(TOKENIZER).encode_padded("stir " * 200)
    assert len(ids) == 77 and ids[0] == 49406 and ids[-1] == 49407
