"""Loading and saving causal language models and their tokenizers.

Any model the transformers Auto classes know works: a hub id or a local directory, with its own
chat template. A stage name (``"train-sft"``) stands for the model that stage saved, and
``"train-sft/base"`` for a sub-directory of that stage. The SFT and RL trainers and the
evaluator share these.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from astra_core.config import STAGES
from astra_core.errors import AstraError, ConfigError

DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_model(ref: str, run_dir: str | Path | None = None, *, key: str = "model") -> str:
    """What to pass to ``from_pretrained``: a stage's saved model, or ``ref`` as it is."""
    stage, _, sub = ref.partition("/")
    if run_dir is not None and stage in STAGES:
        path = Path(run_dir) / stage / (sub or "model")
        if not (path / "config.json").exists():
            raise ConfigError(
                f"model {ref!r}: {path} holds no model; run the {stage} stage first "
                "(or name a local directory or a hub id)",
                key=key,
            )
        return str(path)
    return ref


def _torch_dtype(dtype: str) -> Any:
    import torch

    if dtype not in DTYPES:
        raise ConfigError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}", key="dtype")
    return "auto" if dtype == "auto" else getattr(torch, dtype)


def load_tokenizer(path: str, *, trust_remote_code: bool = False) -> Any:
    """The tokenizer of ``path`` with left padding (for generation) and a pad token."""
    from transformers import AutoTokenizer

    # transformers 5 saves padding_side only when given to the constructor
    tokenizer = AutoTokenizer.from_pretrained(
        path, padding_side="left", trust_remote_code=trust_remote_code
    )
    if not getattr(tokenizer, "chat_template", None):
        raise AstraError(
            f"tokenizer of {path} has no chat template; ASTRA renders conversations and tool "
            "calls with it (use an instruct model, or set tokenizer.chat_template and save it)"
        )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    path: str,
    *,
    dtype: str = "float32",
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
) -> Any:
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": _torch_dtype(dtype), "trust_remote_code": trust_remote_code}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        return AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as exc:
        raise AstraError(f"cannot load model {path!r}: {exc}") from exc


def load_model_and_tokenizer(
    path: str,
    *,
    dtype: str = "float32",
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
) -> tuple[Any, Any]:
    tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
    model = load_model(
        path,
        dtype=dtype,
        attn_implementation=attn_implementation,
        trust_remote_code=trust_remote_code,
    )
    return model, tokenizer


def save_model(
    model: Any, tokenizer: Any, directory: str | Path, *, state_dict: Any = None
) -> Path:
    """``save_pretrained`` both into a temporary directory moved into place, so a reader never
    sees half a model. ``state_dict`` is the gathered one under sharded training."""
    target = Path(directory)
    tmp = target.with_name(f".tmp-{target.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, state_dict=state_dict)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target
