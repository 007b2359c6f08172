"""A few lines of Python that call a freshly fine-tuned model with the openai SDK.

Shown in the Fine-tune tab when a job succeeds, so the user can use the model outside the app at once.
The key is never written into it: it comes from the environment (or, for the embedded backend, from
the handle the project starts, whose key is random per process).
"""

from __future__ import annotations

import json
from urllib.parse import urlparse


def _client_lines(kind: str, base_url: str | None, key_env: str | None, api_version: str | None) -> str:
    env = json.dumps(key_env or ("AZURE_OPENAI_API_KEY" if kind == "azure" else "OPENAI_API_KEY"))
    if kind == "local":
        return ("# Run inside the Distill Studio folder: the embedded backend's key is random per process.\n"
                "from pipeline.local.runtime import ensure_local_backend\n\n"
                "client = ensure_local_backend().client()\n")
    if kind == "azure":
        return ("import os\n\nfrom openai import AzureOpenAI\n\n"
                f"client = AzureOpenAI(azure_endpoint={json.dumps(base_url or '')}, "
                f"api_version={json.dumps(api_version or '')}, api_key=os.environ[{env}])\n")
    hosted = not base_url or (urlparse(str(base_url)).hostname or "").endswith("api.openai.com")
    where = "" if hosted else f"base_url={json.dumps(str(base_url))}, "
    return f"import os\n\nfrom openai import OpenAI\n\nclient = OpenAI({where}api_key=os.environ[{env}])\n"


def usage_snippet(model: str, *, kind: str, base_url: str | None, key_env: str | None = None,
                  api_version: str | None = None) -> str:
    """Python code calling `model`; `kind` is the endpoint kind ("openai", "compatible", "local", "azure")."""
    return (f"{_client_lines(kind, base_url, key_env, api_version)}"
            "reply = client.chat.completions.create(\n"
            f"    model={json.dumps(model)},\n"
            "    messages=[\n"
            "        # Use the system prompt of your training examples, if they had one.\n"
            '        {"role": "user", "content": "Hello!"},\n'
            "    ],\n)\nprint(reply.choices[0].message.content)\n")
