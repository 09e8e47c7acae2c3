"""OpenAPI ``responses`` of the resource routes: each error they answer, as a problem."""

from __future__ import annotations

from typing import Any

from hub.api.problems import MEDIA_TYPE, Problem

MISSING_SCOPE = "the credential lacks the route's scope"
BAD_BODY = "the body is not a JSON document"


def problems(codes: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """``{404: "no such home in the caller's region"}`` → FastAPI ``responses`` (403 for a
    missing scope always included)."""
    return {
        code: {"description": text, "model": Problem, "content": {MEDIA_TYPE: {}}}
        for code, text in {403: MISSING_SCOPE, **codes}.items()
    }
