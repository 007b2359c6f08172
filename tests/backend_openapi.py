"""A small validator for the JSON Schema subset OpenAI's OpenAPI spec uses (for the local backend tests).

Checks $ref, anyOf/oneOf/allOf, type, enum/const, required, properties and items — enough to catch a
missing field, a wrong type or a wrong `object` value. The schemas come from
tests/data/openai_schemas_subset.json, extracted from openai/openai-openapi (MIT).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.local.openapi import BATCH_NULLABLE

_SCHEMAS = json.loads((Path(__file__).parent / "data" / "openai_schemas_subset.json").read_text())["schemas"]
# OpenAI answers null for a Batch's times and files not reached yet (its own examples do), where its
# schema says non-null: the same allowance as the backend's document (pipeline/local/openapi.py).
for _name in BATCH_NULLABLE:
    _SCHEMAS["Batch"]["properties"][_name] = {"anyOf": [_SCHEMAS["Batch"]["properties"][_name], {"type": "null"}]}
_TYPES = {"string": str, "boolean": bool, "object": dict, "array": list, "null": type(None)}


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def errors(value: Any, schema: dict | str, path: str = "$") -> list[str]:
    if isinstance(schema, str):
        schema = _SCHEMAS[schema]
    if "$ref" in schema:
        return errors(value, _SCHEMAS[schema["$ref"].split("/")[-1]], path)
    if value is None and schema.get("nullable"):
        return []
    found: list[str] = []
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branches = [errors(value, branch, path) for branch in schema[key]]
            if all(branches):
                found.append(f"{path}: matches none of {key} ({branches[0][0]})")
    for branch in schema.get("allOf", []):
        found += errors(value, branch, path)
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if schema.get("nullable"):
            kinds = [*kinds, "null"]
        if not any(_type_ok(value, kind) for kind in kinds):
            return [*found, f"{path}: {value!r} is not {kinds}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{path}: {value!r} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        found.append(f"{path}: {value!r} != {schema['const']!r}")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                found.append(f"{path}: missing required '{name}'")
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                found += errors(value[name], sub, f"{path}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += errors(item, schema["items"], f"{path}[{i}]")
    return found


def assert_matches(value: Any, schema_name: str) -> None:
    problems = errors(value, schema_name)
    assert not problems, f"{schema_name}: " + "; ".join(problems[:5])
