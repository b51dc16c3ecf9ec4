"""The API contract (issue 10, section 5): docs/openapi.yaml is what the code describes, and it
describes every body.

- The committed schema equals a fresh generation (the `make schema` command itself), so a change
  to the contract shows up in review as a diff of docs/openapi.yaml.
- Every operation declares a success answer with a typed body (or none: 204, the PDF) and the
  shared error shape for its 4xx; no free-form object stands for a body.

That the code answers what the schema says is checked on real answers in
tests/config/test_api_fuzz.py (every answer of the fuzz validated against its operation)."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command

COMMITTED = Path(settings.BASE_DIR) / "docs" / "openapi.yaml"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> str:
    target = tmp_path_factory.mktemp("schema") / "openapi.yaml"
    call_command("spectacular", "--file", str(target), "--validate", "--fail-on-warn")
    return target.read_text()


def test_the_committed_schema_is_what_the_code_describes(generated):
    committed = COMMITTED.read_text() if COMMITTED.exists() else ""
    if committed != generated:
        diff = difflib.unified_diff(
            committed.splitlines(), generated.splitlines(), "docs/openapi.yaml (committed)", "the code", lineterm=""
        )
        shown = "\n".join(list(diff)[:80])
        pytest.fail(f"The API contract changed: run `make schema` and commit docs/openapi.yaml.\n{shown}")


def test_generation_is_deterministic(generated, tmp_path):
    again = tmp_path / "again.yaml"
    call_command("spectacular", "--file", str(again))
    assert again.read_text() == generated


def _typed(schema: dict, components: dict, seen: frozenset = frozenset()) -> bool:
    """A body whose shape is stated: a component or array of typed items, an object with
    properties or typed additionalProperties, a scalar; never a bare `{"type": "object"}`."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return name in seen or _typed(components[name], components, seen | {name})
    if "oneOf" in schema or "allOf" in schema:
        return all(_typed(part, components, seen) for part in schema.get("oneOf", []) + schema.get("allOf", []))
    if schema.get("type") == "array":
        return _typed(schema["items"], components, seen)
    if schema.get("type") == "object":
        extra = schema.get("additionalProperties")
        return bool(schema.get("properties")) or (isinstance(extra, dict) and _typed(extra, components, seen))
    return schema.get("type") in {"string", "integer", "number", "boolean"}


def test_every_operation_declares_typed_answers(generated):
    document = yaml.safe_load(generated)
    components = document["components"]["schemas"]
    problems, operations = [], 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            operations += 1
            label = f"{method.upper()} {path}"
            responses = operation["responses"]
            successes = [status for status in responses if status.startswith("2")]
            if len(successes) != 1:
                problems.append(f"{label}: success answers {successes}")
            for status in ("400", "401", "403"):
                if status not in responses:
                    problems.append(f"{label}: no {status}")
            for status, response in responses.items():
                if status == "204":
                    if "content" in response:
                        problems.append(f"{label}: 204 with a body")
                    continue
                for media_type, content in response.get("content", {"": None}).items():
                    if content is None:
                        problems.append(f"{label}: {status} without a body")
                    elif media_type == "application/pdf":
                        continue
                    elif not _typed(content["schema"], components):
                        problems.append(f"{label}: {status} {media_type} is not typed")
                    elif status >= "400" and content["schema"].get("$ref", "").rsplit("/", 1)[-1] not in {
                        "Error",
                        "NoValidEventsOut",
                    }:
                        problems.append(f"{label}: {status} is not the error shape")
    assert problems == []
    assert operations >= 58  # what the API had when this test was written
