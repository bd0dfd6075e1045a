"""Typed models of the common ``app.bsky.*`` records, built on demand from record JSON.

Only the fields applications usually read are typed; every model keeps unknown fields
(``extra="allow"``), so newer lexicon fields are never lost.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class Link(_Record):
    link: str = Field(alias="$link")


class Blob(_Record):
    type: str = Field(default="blob", alias="$type")
    ref: Link
    mime_type: str = Field(alias="mimeType")
    size: int


class StrongRef(_Record):
    uri: str
    cid: str


class ReplyRef(_Record):
    root: StrongRef
    parent: StrongRef


class ByteSlice(_Record):
    byte_start: int = Field(alias="byteStart")
    byte_end: int = Field(alias="byteEnd")


class Facet(_Record):
    index: ByteSlice
    features: list[dict[str, Any]]


class Post(_Record):
    type: str = Field(default="app.bsky.feed.post", alias="$type")
    text: str
    created_at: str = Field(alias="createdAt")
    langs: list[str] | None = None
    reply: ReplyRef | None = None
    embed: dict[str, Any] | None = None
    facets: list[Facet] | None = None
    tags: list[str] | None = None


class Like(_Record):
    type: str = Field(default="app.bsky.feed.like", alias="$type")
    subject: StrongRef
    created_at: str = Field(alias="createdAt")
    via: StrongRef | None = None


class Repost(_Record):
    type: str = Field(default="app.bsky.feed.repost", alias="$type")
    subject: StrongRef
    created_at: str = Field(alias="createdAt")
    via: StrongRef | None = None


class Follow(_Record):
    type: str = Field(default="app.bsky.graph.follow", alias="$type")
    subject: str
    created_at: str = Field(alias="createdAt")


class Block(_Record):
    type: str = Field(default="app.bsky.graph.block", alias="$type")
    subject: str
    created_at: str = Field(alias="createdAt")


class ListItem(_Record):
    type: str = Field(default="app.bsky.graph.listitem", alias="$type")
    subject: str
    list: str
    created_at: str = Field(alias="createdAt")


class Profile(_Record):
    type: str = Field(default="app.bsky.actor.profile", alias="$type")
    display_name: str | None = Field(default=None, alias="displayName")
    description: str | None = None
    avatar: Blob | None = None
    banner: Blob | None = None
    created_at: str | None = Field(default=None, alias="createdAt")
    pinned_post: StrongRef | None = Field(default=None, alias="pinnedPost")


RECORD_TYPES: dict[str, type[_Record]] = {
    "app.bsky.feed.post": Post,
    "app.bsky.feed.like": Like,
    "app.bsky.feed.repost": Repost,
    "app.bsky.graph.follow": Follow,
    "app.bsky.graph.block": Block,
    "app.bsky.graph.listitem": ListItem,
    "app.bsky.actor.profile": Profile,
}


def parse_record(record: dict[str, Any]) -> _Record | None:
    """The typed model for a record's ``$type``, or None if that type is not modelled.

    Raises pydantic's ValidationError (naming the field) for a modelled type whose record does
    not match the lexicon.
    """
    model = RECORD_TYPES.get(str(record.get("$type", "")))
    return model.model_validate(record) if model is not None else None
