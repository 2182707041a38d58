"""Write scikit-learn's 8x8 digits as PNG files, with a JSON file of their labels.

The folder it writes is what a user's own image data often looks like: image files, and one
annotation file mapping each file's name (relative to the folder) to its label.

    python examples/image_folder/make_digits_images.py --out digits_png
    python examples/image_folder/make_digits_images.py --out digits_png --limit 300 --size 16

`--limit` above the 1,797 digits repeats them (with new file names), which the data-path
benchmark uses to write 10,000 files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ANNOTATIONS = "annotations.json"


def write_digits(
    out: str | Path, *, limit: int | None = None, size: int = 32, channels: int = 1
) -> Path:
    """Write the digits as `size` x `size` PNG files into `out`, and `out/annotations.json`.

    Args:
        out: the folder to write (created if missing).
        limit: how many images (default: all 1,797; more repeats them).
        size: the side of each image in pixels (upscaled from 8 with bilinear resampling).
        channels: 1 for grayscale PNG files, 3 for RGB.

    Returns:
        The annotation file's path: `{"images/00000.png": 0, ...}`.
    """
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), but got {channels}")
    if size < 1:
        raise ValueError(f"size must be at least 1 pixel, but got {size}")
    digits = load_digits()
    count = len(digits.target) if limit is None else limit
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    # The digits' pixels are 0..16; PNG files hold 0..255.
    pixels = (digits.images * (255 / 16)).round().astype(np.uint8)
    labels: dict[str, int] = {}
    for i in range(count):
        k = i % len(pixels)
        image = Image.fromarray(pixels[k]).resize((size, size), Image.Resampling.BILINEAR)
        if channels == 3:
            image = image.convert("RGB")
        name = f"images/{i:05d}.png"
        image.save(out / name)
        labels[name] = int(digits.target[k])
    annotations = out / ANNOTATIONS
    annotations.write_text(json.dumps(labels, indent=0))
    return annotations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default="digits_png", help="folder to write (default: %(default)s)"
    )
    parser.add_argument("--limit", type=int, default=None, help="number of images (default: all)")
    parser.add_argument(
        "--size", type=int, default=32, help="pixels per side (default: %(default)s)"
    )
    parser.add_argument(
        "--channels", type=int, choices=(1, 3), default=1, help="1: grayscale, 3: RGB"
    )
    args = parser.parse_args()
    annotations = write_digits(args.out, limit=args.limit, size=args.size, channels=args.channels)
    count = len(json.loads(annotations.read_text()))
    print(f"wrote {count} images of {args.size}x{args.size} and {annotations}")


if __name__ == "__main__":
    main()
