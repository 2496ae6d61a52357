"""stepframe eval's SSIM (ssim.js, src/eval/imageMetrics.ts) against scikit-image's structural_similarity on the same images.

Both follow Wang et al. (2004): the luminance of each image (MATLAB's rgb2gray weights), an 11x11
Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, averaged over the window positions
inside the image (scikit-image: gaussian_weights=True, use_sample_covariance=False).
"""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

skimage_metrics = pytest.importorskip("skimage.metrics", reason="needs Debian's python3-skimage (.ci/run installs it)")

REPO = Path(__file__).resolve().parents[2]
METRICS_JS = REPO / "dist" / "src" / "eval" / "imageMetrics.js"


def _images() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:64]
    base = np.stack([(x * 4) % 256, (y * 3 + 40) % 256, ((x + y) * 2) % 256], axis=-1).astype(np.float64)
    base[20:44, 24:50] = [200, 60, 40]  # a vessel
    pairs = []
    for name, other in [
        ("identical", base),
        ("light noise", base + rng.normal(0, 5, base.shape)),
        ("heavy noise", base + rng.normal(0, 40, base.shape)),
        ("shifted by 2 pixels", np.roll(base, 2, axis=1)),
        ("brighter", base + 30),
        ("inverted", 255 - base),
        ("unrelated", rng.uniform(0, 255, base.shape)),
    ]:
        pairs.append((name, base.clip(0, 255).astype(np.uint8), other.clip(0, 255).round().astype(np.uint8)))
    return pairs


def _gray(image: np.ndarray) -> np.ndarray:
    """MATLAB's rgb2gray on uint8, as ssim.js computes it (rounded to the nearest level)."""
    return np.floor(0.29894 * image[..., 0] + 0.58704 * image[..., 1] + 0.11402 * image[..., 2] + 0.5).astype(np.uint8)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the TypeScript metric")
@pytest.mark.skipif(not METRICS_JS.exists(), reason="run `npm run build` first: the test calls the built src/eval/imageMetrics.js")
def test_ssim_matches_scikit_image_on_the_same_images():
    pairs = _images()
    payload = [{"width": 64, "height": 64, "a": a.reshape(-1).tolist(), "b": b.reshape(-1).tolist()} for _, a, b in pairs]
    script = (
        f"import {{ ssim }} from {json.dumps(METRICS_JS.as_uri())};\n"
        "let input = ''; process.stdin.on('data', (d) => (input += d)); process.stdin.on('end', () => {\n"
        "  const pairs = JSON.parse(input);\n"
        "  const image = (p, data) => ({ width: p.width, height: p.height, data: Uint8Array.from(data) });\n"
        "  console.log(JSON.stringify(pairs.map((p) => ssim(image(p, p.a), image(p, p.b)))));\n"
        "});\n"
    )
    result = subprocess.run(["node", "--input-type=module", "-e", script], input=json.dumps(payload), capture_output=True, text=True, check=True)
    ours = json.loads(result.stdout)
    for (name, a, b), value in zip(pairs, ours):
        expected = skimage_metrics.structural_similarity(_gray(a), _gray(b), gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
        assert value == pytest.approx(expected, abs=1e-4), name
    assert ours[0] == pytest.approx(1.0)
    assert ours[1] > ours[2] > ours[6], "more noise, lower SSIM"
