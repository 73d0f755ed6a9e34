"""The one reader of JSON request bodies: bounded, strict, and storable.

Every endpoint that takes a JSON body calls `json_body`. It reads at most
`AGENTDECK_MAX_BODY_BYTES` (+1, to tell "over" from "exactly"), whether the
client sent a Content-Length or a chunked body (which has none), parses with
`strict_json.loads`, and refuses text no UTF-8 store can hold (a lone
surrogate): accepted, it would fail later in the recorder, for good.
"""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from webapp import strict_json
from webapp.errors import ApiError
from webapp.services import services

READ_CHUNK = 64 * 1024


def _too_large() -> ApiError:
    return ApiError(413, "too_large", "the body is larger than the limit")


def read_body(limit: int) -> bytes:
    """The request body, or 413 once it passes `limit` bytes (read no further)."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large()
    # Flask's own cap (MAX_CONTENT_LENGTH, the same limit) cannot tell a chunked body
    # of exactly `limit` bytes from a longer one; one byte more can.
    request.max_content_length = limit + 1
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := request.stream.read(min(READ_CHUNK, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise _too_large()
    except RequestEntityTooLarge:
        raise _too_large() from None
    return b"".join(chunks)


def json_body(*, required: bool = True) -> Any:
    """The request's JSON body (None when empty and not `required`), or the contract's
    error: 413 too large, 400 not JSON this API takes, 422 text that cannot be stored."""
    data = read_body(services().settings.max_body_bytes)
    if not data:
        if required:
            raise ApiError(400, "bad_json", "a JSON body is required")
        return None
    try:
        text = data.decode("utf-8")
        value = strict_json.loads(text)
    except UnicodeDecodeError:
        raise ApiError(400, "bad_json", "the body is not UTF-8 text") from None
    except strict_json.JsonRefused as exc:
        raise ApiError(400, "bad_json", f"the body is not valid JSON: {exc}") from None
    if strict_json.may_hold_surrogates(text):
        path = strict_json.unencodable_path(value)
        if path is not None:
            field = path or "body"
            raise ApiError(
                422,
                "invalid_input",
                f'"{field}" holds text that is not valid Unicode (a lone surrogate)',
                field=field,
            )
    return value
