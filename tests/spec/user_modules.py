"""Small real modules of user code, for tests of what validation imports (and never calls).

`put_on_path` writes them into a folder, puts it on `sys.path` and forgets them afterwards,
so that each test imports them afresh.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Until hpo.trainable.pipeline lands, a user's Pipeline subclasses a class of the same
# module and name, which is what validation tells a Pipeline by (it imports no torch).
_HAS_PIPELINE = importlib.util.find_spec("hpo.trainable.pipeline") is not None
PIPELINE_BASE = (
    "from hpo.trainable.pipeline import Pipeline\n"
    if _HAS_PIPELINE
    else "class Pipeline:\n    pass\n\n"
    "Pipeline.__module__ = 'hpo.trainable.pipeline'\nPipeline.__qualname__ = 'Pipeline'\n"
)

MODULES = {
    "user_data": (
        "def load(config):\n"
        "    raise RuntimeError('validation called the data function')\n"
        "def no_config():\n    return None\n"
        "def two(config, split):\n    return None\n"
        "def with_default(config, split='train'):\n    return None\n"
        "class Folder:\n"
        "    def __init__(self, config):\n"
        "        raise RuntimeError('validation made a dataset')\n"
        "class NoConfig:\n    def __init__(self):\n        pass\n"
    ),
    "user_models": (
        "class Net:\n"
        "    def __init__(self, width=8):\n"
        "        raise RuntimeError('validation built the model')\n"
        "def net(config, input_shape, output_dim):\n    return None\n"
    ),
    "user_collate": ("def collate(batch):\n    return batch\ndef no_batch():\n    return None\n"),
    "user_transforms": (
        "SCALE = 2.0\n"
        "class Jitter:\n"
        "    def __init__(self, amount=0.1):\n        self.amount = amount\n"
        "    def __call__(self, x):\n        return x\n"
        "class Resize(Jitter):\n    pass\n"
    ),
    "user_train": "def main(config):\n    return None\n",
    "user_pipeline": PIPELINE_BASE
    + "class MyPipeline(Pipeline):\n    pass\n"
    + "class Deeper(MyPipeline):\n    pass\n",
    "user_broken": "raise RuntimeError('no GPU here')\n",
    "user_needs_missing": "import not_installed_here\n",
}


def write_modules(directory: Path) -> Path:
    for name, text in MODULES.items():
        (directory / f"{name}.py").write_text(text)
    return directory


@contextmanager
def put_on_path(directory: Path) -> Iterator[Path]:
    """The modules, importable from `directory` while the block runs."""
    write_modules(directory)
    sys.path.insert(0, str(directory))
    try:
        yield directory
    finally:
        sys.path.remove(str(directory))
        for name in MODULES:
            sys.modules.pop(name, None)
