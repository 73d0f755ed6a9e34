"""Flower's task search syntax, parsed."""

from __future__ import annotations

from webapp.monitor.search import Search, parse


def test_terms_by_prefix_and_free_text() -> None:
    got = parse("name:tasks.add state:failure worker:w1 args:42 kwargs:user=7 result:ok hello")
    assert got == Search(
        names=["tasks.add"], states=["FAILURE"], workers=["w1"], args=["42"],
        kwargs={"user": "7"}, results=["ok"], free=["hello"],
    )  # fmt: skip


def test_quoted_values_keep_their_spaces_and_quotes() -> None:
    got = parse('args:"hello world" "free text" name:"say \\"hi\\""')
    assert got.args == ["hello world"]
    assert got.free == ["free text"]
    assert got.names == ['say "hi"']


def test_states_repeat_and_unknown_prefixes_are_free_text() -> None:
    got = parse("state:SUCCESS,state:revoked colour:red")
    assert got.states == ["SUCCESS", "REVOKED"]
    assert got.free == ["colour:red"]


def test_empty_values_and_bare_kwargs() -> None:
    got = parse("name: kwargs:novalue")
    assert got.names == [] and got.kwargs == {} and got.free == ["novalue"]
    assert parse(None) == Search() and parse("") == Search()
