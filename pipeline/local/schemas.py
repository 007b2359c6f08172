"""Typed request bodies of the local backend, and the one way a body becomes one of them.

Every body is parsed (JSON, nesting limit), then validated into a pydantic model with bounds on every
number, before any work starts; what fails is a 400 in OpenAI's error shape naming the `param`.
Parsing runs off the event loop (a 20 MB prompt must not stall the other requests).
The models are also what the server's OpenAPI document shows (see openapi.py).
Top-level objects allow fields they do not know (the SDK sends new ones over time; they are ignored);
the objects whose fields the backend acts on refuse unknown ones.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.local.errors import bad_request

MAX_DEPTH = 64  # deeper JSON is refused before validation (100k-deep JSON used to hit RecursionError)
INT64 = 2**63
Auto = Literal["auto"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# -- chat completions ------------------------------------------------------------------------------
class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = Field(None, max_length=256)

    @field_validator("content")
    @classmethod
    def _text_parts(cls, value: Any) -> Any:
        if isinstance(value, list):
            for part in value:
                if part.get("type") not in ("text", "input_text") or not isinstance(part.get("text"), str):
                    raise ValueError("this local model reads text only; send text content parts "
                                     "({'type': 'text', 'text': ...})")
        return value

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part["text"] for part in self.content)
        return self.content or ""


class StreamOptions(_Open):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class JSONSchemaFormat(_Open):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class TextFormat(_Closed):
    type: Literal["text"]


class JSONObjectFormat(_Closed):
    type: Literal["json_object"]


class JSONSchemaResponseFormat(_Closed):
    type: Literal["json_schema"]
    json_schema: JSONSchemaFormat


ResponseFormat = Annotated[TextFormat | JSONObjectFormat | JSONSchemaResponseFormat, Field(discriminator="type")]


class FunctionDefinition(_Open):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Closed):
    type: Literal["function"]
    function: FunctionDefinition


class FunctionName(_Closed):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")


class NamedToolChoice(_Closed):
    type: Literal["function"]
    function: FunctionName


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice
Stop = str | Annotated[list[str], Field(max_length=4)] | None


class ChatCompletionRequest(_Open):
    """POST /v1/chat/completions. Fields not listed are accepted and ignored (logprobs come back null)."""

    model: str = Field(min_length=1, max_length=512, examples=["SmolLM2-135M-Instruct"])
    messages: list[ChatMessage] = Field(min_length=1, max_length=4096)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    max_completion_tokens: int | None = Field(None, ge=1, le=1_000_000)
    n: int | None = Field(None, ge=1, le=8, description="At most 8 on the local backend; 1 when streaming.")
    seed: int | None = Field(None, ge=-INT64, le=INT64 - 1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    stop: Stop = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = Field(None, max_length=128)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = Field(None, max_length=512)
    metadata: dict[str, str] | None = Field(None, max_length=16)
    store: bool | None = None

    def stop_list(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])

    def token_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


# -- fine-tuning jobs ------------------------------------------------------------------------------
class Hyperparameters(_Closed):
    n_epochs: Auto | Annotated[int, Field(ge=1, le=50)] | None = "auto"
    batch_size: Auto | Annotated[int, Field(ge=1, le=64)] | None = "auto"
    learning_rate_multiplier: Auto | Annotated[float, Field(ge=1e-6, le=10)] | None = "auto"

    def resolved(self) -> dict:
        return {name: "auto" if value is None else value for name, value in self.model_dump().items()}


class SupervisedMethod(_Closed):
    hyperparameters: Hyperparameters | None = None


class Method(_Closed):
    type: Literal["supervised"] = Field(description="The local backend trains 'supervised' (LoRA SFT) only.")
    supervised: SupervisedMethod | None = None


class FineTuningJobRequest(_Open):
    """POST /v1/fine_tuning/jobs."""

    model: str = Field(min_length=1, max_length=512, examples=["SmolLM2-135M-Instruct"])
    training_file: str = Field(min_length=1, max_length=128)
    validation_file: str | None = Field(None, max_length=128)
    suffix: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    hyperparameters: Hyperparameters | None = None
    method: Method | None = None
    metadata: dict[str, Annotated[str, Field(max_length=512)]] | None = Field(None, max_length=16)

    def resolved_hyperparameters(self) -> dict:
        chosen = (self.method.supervised.hyperparameters if self.method and self.method.supervised else None)
        return (chosen or self.hyperparameters or Hyperparameters()).resolved()


# -- batches ---------------------------------------------------------------------------------------
class FileExpiration(_Closed):
    anchor: Literal["created_at"]
    seconds: int = Field(ge=3600, le=2_592_000)


class CreateBatchRequest(_Open):
    """POST /v1/batches. `endpoint` and `completion_window` are strings here, so the route can say
    what this backend runs instead of a bare enum error."""

    input_file_id: str = Field(min_length=1, max_length=128)
    endpoint: str = Field(min_length=1, max_length=128, examples=["/v1/chat/completions"])
    completion_window: str = Field(min_length=1, max_length=16, examples=["24h"])
    metadata: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]] | None = \
        Field(None, max_length=16)
    output_expires_after: FileExpiration | None = None  # accepted; the local backend keeps files until deleted


REQUEST_MODELS = (ChatCompletionRequest, FineTuningJobRequest, CreateBatchRequest)


# -- parsing ---------------------------------------------------------------------------------------
def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON nests deeper than `limit` (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _field_names(models: tuple[type[BaseModel], ...]) -> set[str]:
    names: set[str] = set()
    todo = list(models)
    while todo:
        model = todo.pop()
        for name, info in model.model_fields.items():
            names.update({name, info.alias or name})
            todo += [t for t in _model_types(info.annotation) if t not in todo]
    return names


def _model_types(annotation: Any) -> list[type[BaseModel]]:
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _model_types(arg)]


def param_of(loc: tuple, fields: set[str]) -> str | None:
    """pydantic's error location as OpenAI names a param (messages[0].content): union branches and
    discriminator tags in the location are not fields, so they are left out."""
    out, last = "", None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in fields and part != last:
            out += f".{part}" if out else part
        last = part
    return out or None


_HINTS = {"method.type": "the local backend trains the 'supervised' method only"}


def _message(errors: list[dict], param: str | None) -> str:
    first = errors[0]
    if first.get("type") == "extra_forbidden":
        return f"Unrecognized request argument supplied: {param}."
    if first.get("type") == "missing":
        return f"Missing required parameter: '{param}'."
    # A union (e.g. 'auto' or an integer) fails once per branch: say what each branch wanted.
    msgs = list(dict.fromkeys(re.sub(r"^Value error, ", "", e.get("msg", "invalid value")) for e in errors))
    return f"Invalid value for '{param}': {_HINTS.get(param or '') or ' or '.join(msgs)}."


def parse_json(raw: bytes) -> Any:
    try:
        body = json.loads(raw)
    except RecursionError:
        raise bad_request(f"The request body nests JSON deeper than {MAX_DEPTH} levels.") from None
    except ValueError:
        raise bad_request("The request body is not valid JSON.") from None
    if too_deep(body):
        raise bad_request(f"The request body nests JSON deeper than {MAX_DEPTH} levels.")
    return body


def validate(raw: bytes, model: type[BaseModel]) -> Any:
    return validate_value(parse_json(raw), model)


def validate_value(body: Any, model: type[BaseModel]) -> Any:
    """An already-parsed body as `model` (a batch line's body), or a 400 APIError naming the param."""
    if too_deep(body):
        raise bad_request(f"The request body nests JSON deeper than {MAX_DEPTH} levels.")
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        fields = _field_names((model,))
        # The most specific location (the longest) says the most; its siblings are union branches.
        param = param_of(max(errors, key=lambda e: len(e.get("loc", ())))["loc"], fields)
        same = [e for e in errors if param_of(e.get("loc", ()), fields) == param]
        raise bad_request(_message(same, param), param) from None


async def parse(request: Any, model: type[BaseModel]) -> Any:
    """The body of `request` as `model`, validated in a worker thread; a 400 APIError when it is not."""
    raw = await request.body()
    return await asyncio.to_thread(validate, raw, model)
