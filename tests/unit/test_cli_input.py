"""How `agentdeck submit` and `agentdeck answer` read values from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentdeck.cli import CliError, exit_code_for, parse_input, parse_value
from agentdeck.client import ApiError, Client, InvalidInput, api_error


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("0.5", 0.5),
        ("true", True),
        ("null", None),
        ('{"a": [1, "b"]}', {"a": [1, "b"]}),
        ('"3"', "3"),
        ("hello world", "hello world"),
        ("", ""),
        ("NaN", "NaN"),  # not a number the API takes: kept as text
        ("Infinity", "Infinity"),
        ("{broken", "{broken"),
    ],
)
def test_a_value_is_json_when_it_parses_else_a_string(text: str, value: object) -> None:
    # given a value typed on the command line, when parsed, then JSON wins where it parses
    assert parse_value(text) == value


def test_key_values_override_a_json_file(tmp_path: Path) -> None:
    # given an input file and key=value pairs
    path = tmp_path / "input.json"
    path.write_text(json.dumps({"text": "from the file", "steps": 1}))
    # when both are given, then the pairs override the file's keys
    assert parse_input(["steps=4", "delay=0", "note=a=b"], str(path)) == {
        "text": "from the file", "steps": 4, "delay": 0, "note": "a=b",
    }  # fmt: skip


@pytest.mark.parametrize("pairs", [["text"], ["=3"]])
def test_a_pair_without_a_key_or_equals_is_refused(pairs: list[str]) -> None:
    # given a malformed pair, when parsed, then it is a usage error (exit 2)
    with pytest.raises(CliError) as refused:
        parse_input(pairs, None)
    assert refused.value.exit_code == 2


def test_a_json_file_must_hold_an_object(tmp_path: Path) -> None:
    # given a file holding a list, when read as the input, then it is refused
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(CliError, match="JSON object"):
        parse_input([], str(path))


def test_exit_codes_follow_the_final_state() -> None:
    # given each final state, then the exit code is 0, 1 or 2
    assert [exit_code_for(s) for s in ("SUCCESS", "FAILURE", "REVOKED", "")] == [0, 1, 2, 2]


def test_errors_are_typed_by_status_and_keep_the_contract_fields() -> None:
    # given the contract's error object for a 422, when turned into an exception
    error = api_error(422, {"code": "invalid_input", "message": "bad", "field": "input.steps"})
    # then it is InvalidInput with its code, message and field
    assert isinstance(error, InvalidInput) and isinstance(error, ApiError)
    assert (error.status, error.code, error.message, error.field) == (
        422, "invalid_input", "bad", "input.steps",
    )  # fmt: skip
    assert "input.steps" in str(error)


def test_the_websocket_url_follows_the_server_url() -> None:
    # given server URLs with and without TLS and a path prefix, then /ws sits beside the API
    assert Client("http://127.0.0.1:8000/", "t").ws_url == "ws://127.0.0.1:8000/ws"
    assert Client("https://deck.example.com/ad", "t").ws_url == "wss://deck.example.com/ad/ws"
    with pytest.raises(ValueError):
        Client("deck.example.com", "t")
