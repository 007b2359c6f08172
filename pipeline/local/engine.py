"""The model engine: one worker thread decodes every active request, batching those on the same weights.

HTTP handlers submit a `GenRequest` and read its deltas from an asyncio queue. The worker prefills new
requests, then runs one decoding step for all active requests in a single batched forward per set of
weights (see fastlm.py): the base model and the fine-tuned models served as its weights plus a LoRA
adapter go through one pass together. So three concurrent chat panes (base, fine-tuned, teacher) share
the cost of one pass and never share state: each request owns its KV cache, sampler generator and output
queue.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pipeline import config
from pipeline.local import native, prefixes, threads
from pipeline.local.constrain import OutputConstraint, load_tokenizer
from pipeline.local.fastlm import FastLlama, KVCache, sample
from pipeline.local.qweights import UnsupportedAdapter
from pipeline.local.threads import ThreadChooser
from pipeline.local.weights import transformers_api

log = logging.getLogger(__name__)
EXIT_JOIN_S = 60  # at exit, how long to let a model load or a decoding step finish
MAX_MERGED_MODELS = 3  # fine-tuned models kept ready (an unmerged adapter is ~20 MB; a merged copy more)


_PLAIN_FAST_TOKENIZERS = ("TokenizersBackend", "PreTrainedTokenizerFast")
CACHE_FORMAT = 6  # bump when FastLlama's tensor layout changes: older cached conversions are then ignored


def decode_format() -> tuple[torch.dtype, str]:
    """(dtype of dense weights, weight format: "int4", "int8" or "dense"), from the CPU's precision choice
    (pipeline/local/precision.py).

    Weight-only int4 layers (int8 lm_head) by default: its kernel was ~2x faster than int8 natively, ~1.4x
    with torch and oneDNN capped to AVX2 (docs/bench/backend.md). DISTILL_DECODE_INT4=0 keeps int8 weights;
    DISTILL_DECODE_INT8=0, or DISTILL_PRECISION=fp32, keeps dense weights in the compute dtype: bf16 only
    where the CPU has it natively, else fp32."""
    from pipeline.local import precision

    choice = precision.choose()
    if choice.decode_weights not in ("int4", "int8") or not config.DECODE_INT8.get():
        return choice.compute_dtype, "dense"
    return choice.compute_dtype, "int4" if choice.decode_weights == "int4" and config.DECODE_INT4.get() else "int8"


def _fast(model: torch.nn.Module, kind: str | None = None) -> FastLlama:
    dtype, default = decode_format()
    return FastLlama(model, dtype=dtype, weights=kind or default)


def _fingerprint(model_dir: Path) -> str:
    """Names, sizes and times of the weight files: a re-converted or replaced model invalidates the cache."""
    files = sorted(p for p in model_dir.glob("*.safetensors") if not p.name.startswith("."))  # not our cache
    return ";".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


def load_tokenizer_fast(model_dir: Path) -> Any:
    """The model's tokenizer, built from its tokenizer.json without asking AutoTokenizer.

    AutoTokenizer reads the model config to pick a class, and that import chain (configuration ->
    activations -> kernels -> generation) cost ~2.5 s of CPU on the first chat; the converted models
    always save a plain fast tokenizer, which loads directly in ~0.3 s with identical behaviour."""
    config_file = model_dir / "tokenizer_config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    if (model_dir / "tokenizer.json").is_file() and config.get("tokenizer_class") in _PLAIN_FAST_TOKENIZERS:
        return transformers_api(("PreTrainedTokenizerFast",)).PreTrainedTokenizerFast.from_pretrained(model_dir)
    return transformers_api().AutoTokenizer.from_pretrained(model_dir)


def load_fast(model_dir: Path) -> FastLlama:
    """The decoder for a model folder, from its cached conversion when there is a current one.

    Converting (loading the float model, quantizing 135M weights) took several seconds of a cold start,
    and more on a busy machine; reading the converted tensors back is a fraction of a second."""
    dtype, kind = decode_format()
    if kind == "dense":
        kind = str(dtype).removeprefix("torch.")
    elif kind == "int4":  # torch's int4 packing is its CPU kernel's: keyed by the kernel's capability
        kind = f"int4-{torch.backends.cpu.get_cpu_capability().lower()}"
    path = model_dir / f".fastlm-{kind}-v{CACHE_FORMAT}.safetensors"
    source = _fingerprint(model_dir)
    if path.is_file():
        try:
            fast = FastLlama.load(path)
            if fast.meta.get("source") == source:
                return fast
        except Exception:  # a damaged or foreign file: convert again below
            log.warning("ignoring unreadable decoder cache %s", path, exc_info=True)
    model = transformers_api().AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    fast = _fast(model)
    fast.meta["source"] = source
    try:
        fast.save(path)
    except OSError:  # a read-only model folder: decoding works, the next start converts again
        log.warning("could not cache the converted decoder weights in %s", model_dir, exc_info=True)
    return fast


def _thread_chooser() -> ThreadChooser | None:
    """Intra-op threads of decoding (process-wide): by default measured per step between 1 and 2
    (pipeline/local/threads.py): a second thread sped one stream up ~1.5x on an idle CPU but slowed
    three streams, and gained nothing when the CPU was shared with the trainer. DISTILL_DECODE_THREADS
    fixes the count. Starts on one thread."""
    chooser = threads.chooser(config.DECODE_THREADS.get())
    if chooser is not None:
        torch.set_num_threads(chooser.candidates[0])
    return chooser


@dataclass
class GenRequest:
    model_id: str
    prompt_ids: list[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    constraint: OutputConstraint | None = None  # structured output: the grammar the tokens must follow
    low_priority: bool = False  # batch work (/v1/batches): admitted after, and decoded only without, chats
    loop: asyncio.AbstractEventLoop | None = None
    out: asyncio.Queue | None = None
    # Filled in by the worker.
    generated: list[int] = field(default_factory=list)
    text: str = ""
    emitted: int = 0
    finish_reason: str | None = None
    cancelled: bool = False
    cache: KVCache | None = None
    generator: torch.Generator | None = None
    feed: list[int] = field(default_factory=list)  # tokens to run through the model on the next step

    def push(self, item: object) -> None:
        if self.loop is not None and self.out is not None:
            try:
                self.loop.call_soon_threadsafe(self.out.put_nowait, item)
            except RuntimeError:  # its loop has ended (a stopping server or batch runner): nobody reads
                self.cancelled = True


Part = tuple[FastLlama, list["GenRequest"]]  # requests of one decoder within a pass


class Engine:
    """Holds the tokenizer and models, and decodes submitted requests on one worker thread."""

    def __init__(self, model_dir_loader: Callable[[], Path], base_id: str,
                 adapter_for: Callable[[str], Path | None]):
        self._model_dir_loader = model_dir_loader
        self.base_id = base_id
        self._adapter_for = adapter_for
        self._ready = threading.Event()
        self._load_error: BaseException | None = None
        self.tokenizer = None
        self.grammar_tokenizer = None  # llguidance's view of the tokenizer, for structured output
        self.model_dir: Path | None = None
        self.max_positions = 0
        self._models: OrderedDict[str, FastLlama] = OrderedDict()
        self._pending: list[GenRequest] = []
        self._active: list[GenRequest] = []
        self._admitting: list[GenRequest] = []  # picked, prefilled together before the next step
        self._cv = threading.Condition()
        self._stopped = False
        self._chooser = _thread_chooser()
        self._prefill_chooser = threads.prefill_chooser(config.DECODE_THREADS.get())
        self._prefixes = prefixes.PrefixStore()
        self._threads = [threading.Thread(target=self._load_base, name="engine-load", daemon=True),
                         threading.Thread(target=self._run, name="engine-decode", daemon=True)]
        for thread in self._threads:
            thread.start()
        atexit.register(self._stop_at_exit)

    # -- loading ---------------------------------------------------------------------------------
    def _load_base(self) -> None:
        try:
            self.model_dir = self._model_dir_loader()
            self.tokenizer = load_tokenizer_fast(self.model_dir)
            self.grammar_tokenizer = load_tokenizer(self.tokenizer)
            self._models[self.base_id] = load_fast(self.model_dir)
            if self._models[self.base_id].quantized:  # the C step serves quantized weights only (fastlm)
                # Built (once per workspace, ~1 s) and its int4 kernel chosen (~10 ms) here rather than in
                # the first chat's first step.
                self._models[self.base_id].choose_int4_kernel(native.library())
            self.max_positions = self._models[self.base_id].max_positions
        except BaseException as exc:  # noqa: BLE001 - kept and re-raised to every caller of wait_ready
            if "after interpreter shutdown" in str(exc):
                # The process is exiting mid-load (a short test run, Ctrl-C at start): nothing failed.
                log.info("model load abandoned: the process is exiting")
            else:
                log.exception("loading the local model failed")
            self._load_error = exc
        finally:
            self._ready.set()

    def wait_ready(self, timeout: float | None = None) -> None:
        if not self._ready.wait(timeout):
            raise TimeoutError("The local model is still loading.")
        if self._load_error is not None:
            raise RuntimeError(f"The local model could not be loaded: {self._load_error}")

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self._load_error is None

    def _model(self, model_id: str) -> FastLlama:
        with self._cv:  # prepare() adds models from another thread
            if model_id in self._models:
                self._models.move_to_end(model_id)
                return self._models[model_id]
        adapter = self._adapter_for(model_id)
        if adapter is None:
            raise KeyError(model_id)
        return self._keep(model_id, self._merged(adapter))

    def _merged(self, adapter: Path) -> FastLlama:
        """The fine-tuned model's decoder: the base's weights plus the adapter in float32, unmerged (exact
        deltas, nothing to convert: ~0.1 s); an adapter that is not plain LoRA is merged and converted."""
        try:
            return self._models[self.base_id].with_adapter(adapter)
        except UnsupportedAdapter as exc:
            log.info("merging adapter %s (%s)", adapter, exc)
        from peft import PeftModel

        base = transformers_api().AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32)
        merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
        # 4-bit rounding of merged weights would wash out the fine-tune's small deltas: int8 at least
        return _fast(merged, "int8" if self._models[self.base_id].weights == "int4" else None)

    def _keep(self, model_id: str, fast: FastLlama) -> FastLlama:
        with self._cv:
            self._models[model_id] = fast
            self._models.move_to_end(model_id)
            while len(self._models) > MAX_MERGED_MODELS + 1:
                oldest = next(k for k in self._models if k != self.base_id)
                del self._models[oldest]
        return fast

    def prepare(self, model_id: str, adapter: Path) -> None:
        """Merge and convert a fine-tuned model now, in the caller's thread (the job runner's, as its job
        succeeds), so that its first request does not do it on the decoding thread: that took seconds
        during which every other stream, of every model, stood still."""
        self.wait_ready()
        with self._cv:
            if model_id in self._models:
                return
        self._keep(model_id, self._merged(adapter))

    def has_prepared(self, model_id: str) -> bool:
        with self._cv:
            return model_id in self._models

    def forget(self, model_id: str) -> None:
        """Drop a cached merged model (its adapter was deleted)."""
        with self._cv:
            self._models.pop(model_id, None)
        self._prefixes.forget(model_id)

    # -- tokens ----------------------------------------------------------------------------------
    def encode_chat(self, messages: list[dict]) -> list[int]:
        return list(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                       tokenize=True, return_dict=False))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    @functools.cached_property
    def eos_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id}
        end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        if isinstance(end, int):
            ids.add(end)
        return {i for i in ids if i is not None}

    # -- decoding --------------------------------------------------------------------------------
    def submit(self, request: GenRequest) -> None:
        with self._cv:
            self._pending.append(request)
            self._cv.notify()

    def shutdown(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify()

    def _stop_at_exit(self) -> None:
        """Let the worker threads leave torch before the interpreter goes: a daemon thread still inside
        a torch call when Python finalizes aborted the process ("terminate called without an active
        exception"), which turns a finished test run into a failed one."""
        self.shutdown()
        for thread in self._threads:
            thread.join(timeout=EXIT_JOIN_S)

    def _run(self) -> None:
        self._ready.wait()
        while True:
            with self._cv:
                while not self._pending and not self._active and not self._stopped:
                    self._cv.wait()
                if self._stopped:
                    return
            # Chats are admitted together and prefilled in one pass (_start); batch work is picked only
            # when no chat waits or decodes (_chatting counts the ones being admitted), one at a time.
            while (request := self._next_pending()) is not None:
                if request.low_priority:
                    self._start([request])
                else:
                    self._admitting.append(request)
            admitting, self._admitting = self._admitting, []
            self._start(admitting)
            self._step()

    def _next_pending(self) -> GenRequest | None:
        """The next request to admit: interactive ones in arrival order; batch work only while no chat
        decodes (its prefill would hold the chat's next step). One at a time, so a chat that arrives
        while batch requests are being prefilled goes next."""
        with self._cv:
            pick = next((r for r in self._pending if not r.low_priority), None)
            if pick is None and self._pending and not self._chatting():
                pick = self._pending[0]
            if pick is not None:
                self._pending.remove(pick)
            return pick

    def _chatting(self) -> bool:
        return bool(self._admitting) or any(not r.low_priority and r.finish_reason is None and not r.cancelled
                                            for r in self._active)

    def interactive_busy(self) -> bool:
        """Is an interactive request waiting or decoding? The batch runner adds nothing then (a batch
        request admitted now would cost the chat its prefill, then wait: see _stepping)."""
        with self._cv:
            return any(not r.low_priority and r.finish_reason is None and not r.cancelled
                       for r in (*self._pending, *self._admitting, *self._active))

    def _by_weights(self, requests: list[GenRequest]) -> list[tuple[FastLlama, list[Part]]]:
        """The requests grouped for one pass each: per set of weights (a base decoder), per decoder made
        from it (the base itself, fine-tuned ones). A request whose model cannot be had fails alone."""
        passes: dict[int, dict[int, Part]] = {}  # id of the base decoder -> id of a decoder -> its part
        for request in requests:
            try:
                model = self._model(request.model_id)
            except Exception as exc:  # e.g. an adapter file gone: this request ends, the others go on
                log.exception("the model of a request could not be loaded")
                self._fail(request, str(exc))
                continue
            passes.setdefault(id(model.root), {}).setdefault(id(model), (model, []))[1].append(request)
        return [(next(iter(parts.values()))[0].root, list(parts.values())) for parts in passes.values()]

    def _start(self, requests: list[GenRequest]) -> None:
        """Prefill the prompts of requests that arrived together, one forward pass per set of weights: the
        demo's 36 benchmark prompts (18 for the base, 18 for the fine-tuned model) take one pass. What the
        prefix store holds of a prompt is copied, not computed (prefixes.py)."""
        for root, parts in self._by_weights(requests):
            group = [request for _, part in parts for request in part]
            try:
                self._share_group_prefixes(root, parts)
                stored: dict[int, torch.Tensor] = {}  # id(request) -> logits of a prompt asked before
                for model, part in parts:
                    for request in part:
                        request.cache = model.new_cache()
                        logits = self._prefixes.take(request.model_id, request.prompt_ids, request.cache)
                        if logits is not None:
                            stored[id(request)] = logits
                segments = [(model, [(r.prompt_ids[r.cache.length:], r.cache) for r in part if id(r) not in stored])
                            for model, part in parts]
                segments = [(model, todo) for model, todo in segments if todo]
                computed = iter(self._prefill(root, segments) if segments else [])
                rows = [stored[id(request)] if id(request) in stored else next(computed) for request in group]
            except Exception as exc:
                if len(group) > 1:  # e.g. one prompt too long: each alone, so only that one fails
                    for request in group:
                        self._start([request])
                else:  # one bad request must not stop the worker serving the others
                    log.exception("generation failed to start")
                    self._fail(group[0], str(exc))
                continue
            for request, logits in zip(group, rows, strict=True):
                if id(request) not in stored:
                    self._prefixes.add(request.model_id, request.prompt_ids, request.cache, logits)
                try:
                    if request.seed is not None:
                        request.generator = torch.Generator().manual_seed(request.seed)
                    self._accept(request, self._sample(request, logits))
                except Exception as exc:
                    log.exception("generation failed to start")
                    self._fail(request, str(exc))
                    continue
                if request.finish_reason is None:
                    self._active.append(request)

    def _share_group_prefixes(self, root: FastLlama, parts: list[Part]) -> None:
        """Prompts of one decoder that arrived together and start alike (a benchmark's system part, one
        template filled in several times): their common start is computed once, in a pass of its own,
        and stored, when that saves more rows than a pass's fixed part."""
        shared = []
        for model, part in parts:
            if len(part) < 2:  # a chat's one prompt: nothing to share, no lookup
                continue
            prefix = prefixes.group_prefix([r.prompt_ids for r in part])
            model_id = part[0].model_id
            if (len(part) - 1) * (len(prefix) - self._prefixes.longest(model_id, prefix)) >= prefixes.SHARE_FROM_ROWS:
                cache = model.new_cache()
                self._prefixes.take(model_id, prefix, cache)
                shared.append((model, model_id, prefix, cache))
        if shared:
            logits = self._prefill(root, [(model, [(prefix[cache.length:], cache)]) for model, _, prefix, cache in shared])
            for (_, model_id, prefix, cache), row in zip(shared, logits, strict=True):
                self._prefixes.add(model_id, prefix, cache, row)

    def _stepping(self) -> list[GenRequest]:
        """The requests decoded this step: every active one, except batch work while a chat decodes
        (each extra row slows every step of the chat; paused batch requests keep their caches)."""
        for request in self._active:
            if request.cancelled and request.finish_reason is None:  # its client left between two steps
                request.finish_reason, request.cache = "cancelled", None
        self._active = [r for r in self._active if r.finish_reason is None]
        if self._chatting():
            return [r for r in self._active if not r.low_priority]
        return self._active

    def _step(self) -> None:
        for root, parts in self._by_weights(self._stepping()):
            group = [request for _, part in parts for request in part]
            try:
                logits = self._timed_forward(root, parts)
            except Exception as exc:  # e.g. the context is full: end these requests, keep serving
                log.exception("decoding step failed")
                for request in group:
                    self._fail(request, str(exc))
                continue
            for row, request in zip(logits, group, strict=True):
                try:
                    self._accept(request, self._sample(request, row))
                except Exception as exc:  # e.g. NaN logits: end this request; the thread must live on,
                    # or every later chat on this server waits forever.
                    log.exception("sampling failed")
                    self._fail(request, f"decoding failed: {type(exc).__name__}")

    def _prefill(self, root: FastLlama, segments: list[tuple[FastLlama, list]]) -> torch.Tensor:
        """A prefill pass on the thread count chosen for prefills (threads.prefill_chooser); a pass that
        first makes the weights' dense copies (seconds, once) is not timed."""
        run = functools.partial(root.forward_together, segments)
        if self._prefill_chooser is None:
            return run()
        rows = sum(len(tokens) for _, group in segments for tokens, _ in group)
        return threads.timed_prefill(self._prefill_chooser, rows, run, timed=not root.makes_dense_copies(rows))

    def _timed_forward(self, root: FastLlama, parts: list[Part]) -> torch.Tensor:
        """One decoding step on the thread count the chooser picks, which gets its wall time back."""
        rows = [(model, [(r.feed, r.cache) for r in part]) for model, part in parts]
        if self._chooser is None or len(self._chooser.candidates) == 1:
            return root.forward_together(rows)
        single = all(len(feed) == 1 for _, segments in rows for feed, _ in segments)  # forced tokens: not a step
        return self._chooser.run(sum(len(part) for _, part in parts), lambda: root.forward_together(rows),
                                 timed=single)

    @staticmethod
    def _sample(request: GenRequest, logits: torch.Tensor) -> int:
        if request.constraint is not None:
            logits = request.constraint.mask(logits)
        return sample(logits, request.temperature, request.top_p, request.generator)

    def _accept(self, request: GenRequest, token: int) -> None:
        """Record a sampled token, emit the new text, and decide whether the request is finished."""
        if request.cancelled:
            request.finish_reason = "cancelled"
            return
        if token in self.eos_ids:
            self._finish(request, "stop")
            return
        request.feed = [token]
        if request.constraint is not None:
            if not request.constraint.accept(token):
                message = f"structured output broke its grammar: {request.constraint.failed}"
                log.error("generation failed: %s", message)
                self._fail(request, message)
                return
            room = request.max_tokens - len(request.generated) - 1  # forced tokens count against max_tokens
            request.feed += request.constraint.forced()[: max(0, room)]
        request.generated.extend(request.feed)
        text = self.tokenizer.decode(request.generated, skip_special_tokens=True)
        cut = min((i for i in (text.find(s) for s in request.stop if s) if i >= 0), default=-1)
        if cut >= 0:
            request.text = text[:cut]
            self._finish(request, "stop")
            return
        request.text = text
        if request.constraint is not None and request.constraint.finished:
            self._finish(request, "stop")  # the JSON is complete; only end-of-sequence could follow
            return
        limit = request.cache.length + len(request.feed) >= self.max_positions
        if len(request.generated) >= request.max_tokens or limit:
            self._finish(request, "length")
            return
        # Hold back an incomplete UTF-8 character and anything that could still become a stop string.
        safe = len(text.rstrip("\ufffd"))
        hold = max((len(s) - 1 for s in request.stop if s), default=0)
        safe = max(request.emitted, safe - hold)
        if safe > request.emitted:
            request.push(("delta", text[request.emitted:safe]))
            request.emitted = safe

    @staticmethod
    def _fail(request: GenRequest, message: str) -> None:
        """End a request with an error its client reads (the caller has logged why)."""
        request.finish_reason = "error"
        request.cache = None
        request.push(("error", message))

    def _finish(self, request: GenRequest, reason: str) -> None:
        text = request.text.rstrip("\ufffd") if reason == "length" else request.text
        if len(text) > request.emitted:
            request.push(("delta", text[request.emitted:]))
            request.emitted = len(text)
        request.finish_reason = reason
        request.cache = None
        request.push(("done", reason))
