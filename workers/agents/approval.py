"""`approval`, the example of a durable run (docs/agents.md walks through it).

A text is drafted (a recorded step), a person approves it, edits it or rejects it
with a note (`ctx.ask` with a typed answer; the run is suspended meanwhile and holds
no worker), and the answer is acted on (a recorded step): an approved or edited text
is published by a child job (`echo`, spawned and waited for), a rejected one is filed.

Every execution of the run starts from the first line: what must happen once (the
draft, the filing, the child) is a recorded step, and what runs again on a replay
(building the question, choosing the branch) depends only on recorded results.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workers.context import Context
from workers.runtime import agent

Topic = Annotated[str, Field(min_length=1, max_length=200)]
Point = Annotated[str, Field(min_length=1, max_length=500)]
Points = Annotated[list[Point], Field(max_length=20)]
# How long the question waits for a reviewer: a second to 30 days.
Timeout = Annotated[float, Field(ge=1, le=30 * 86_400)]
MAX_TEXT = 10_000


class Review(BaseModel):
    """The reviewer's answer: approve the draft, edit it (giving the new text), or
    reject it; a note in each case."""

    model_config = ConfigDict(
        extra="forbid",
        # What the validator below says, in the JSON Schema the web checks answers with.
        json_schema_extra={
            "if": {"properties": {"decision": {"const": "edit"}}, "required": ["decision"]},
            "then": {"required": ["text"], "properties": {"text": {"type": "string"}}},
        },
    )

    decision: Literal["approve", "edit", "reject"]
    note: Annotated[str, Field(max_length=2_000)] = ""
    text: Annotated[str | None, Field(min_length=1, max_length=MAX_TEXT)] = None

    @model_validator(mode="after")
    def _an_edit_gives_the_text(self) -> Review:
        if self.decision == "edit" and self.text is None:
            raise ValueError("an edit gives the new text")
        return self


def write_draft(ctx: Context, topic: str, points: list[str]) -> dict[str, Any]:
    """The draft (a model's call in a real agent: slow, paid, never the same twice,
    hence a recorded step). Its output is said here, so it is said once."""
    lines = [f"Announcing: {topic}", ""]
    lines += [f"- {point}" for point in points] or ["- more soon"]
    text = "\n".join(lines)
    ctx.output(text + "\n")
    return {"text": text, "drafted_at": time.time()}


def prepare(text: str, decision: str, note: str) -> dict[str, Any]:
    """The text as it goes out, with who said what about it."""
    signed = f"{text}\n\n({'approved' if decision == 'approve' else 'edited'} by review"
    signed += f": {note})" if note else ")"
    return {"text": signed, "approved_at": time.time()}


def file_rejection(draft: dict[str, Any], note: str) -> dict[str, Any]:
    """Where a real agent would write the rejection down (a ticket, a mail)."""
    return {"filed_at": time.time(), "note": note, "draft": draft["text"]}


@agent(
    description="An approval workflow: drafts an announcement, asks a person to approve, "
    "edit or reject it (the run waits without a worker), then publishes it through a child "
    "job or files the rejection."
)
def approval(
    ctx: Context, topic: Topic, points: Points | None = None, timeout: Timeout = 86_400
) -> dict[str, Any]:
    draft = ctx.run("draft", write_draft, ctx, topic, list(points or []))
    try:
        review = ctx.ask(f"Publish this?\n\n{draft['text']}", schema=Review, timeout=timeout)
    except TimeoutError:
        filed = ctx.run("file as expired", file_rejection, draft, "no answer in time")
        return {"status": "expired", "filed_at": filed["filed_at"]}
    if review.decision == "reject":
        filed = ctx.run("file the rejection", file_rejection, draft, review.note)
        return {"status": "rejected", "note": review.note, "filed_at": filed["filed_at"]}
    text = review.text if review.decision == "edit" and review.text else draft["text"]
    final = ctx.run("prepare", prepare, text, review.decision, review.note)
    child = ctx.spawn("echo", {"text": final["text"], "steps": 1, "delay": 0})
    published = ctx.wait(child)  # suspends until the child ends; ChildFailed if it failed
    return {"status": "published", "decision": review.decision, "text": published, "child": child}
