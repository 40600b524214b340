"""Content hashes of models: SHA-256 over RFC 8785 canonical JSON."""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785
from pydantic import BaseModel


def canonical_json(value: BaseModel | Any) -> bytes:
    """RFC 8785 (JCS) bytes of a pydantic model or a JSON-compatible value."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return rfc8785.dumps(value)


def content_hash(value: BaseModel | Any) -> str:
    """'sha256:<hex>' of the canonical JSON, so two equal models always hash alike."""
    return "sha256:" + hashlib.sha256(canonical_json(value)).hexdigest()
