"""The Jetstream v1 event JSON (spec §8) as pydantic models.

For parsing what a Jetstream server sends when a typed, validated object is worth the cost
(about 10× an :class:`~jetflow.events.Event`). Unknown fields are ignored, so events from
servers that add fields (Jetstream v2 adds ``cursor``) still parse.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Commit(_Model):
    rev: str
    operation: Literal["create", "update", "delete"]
    collection: str
    rkey: str
    record: dict[str, Any] | None = None
    cid: str | None = None


class Identity(_Model):
    did: str
    handle: str | None = None
    seq: int
    time: str


class Account(_Model):
    active: bool
    did: str
    seq: int
    status: str | None = None
    time: str


class CommitEvent(_Model):
    did: str
    time_us: int
    kind: Literal["commit"]
    commit: Commit


class IdentityEvent(_Model):
    did: str
    time_us: int
    kind: Literal["identity"]
    identity: Identity


class AccountEvent(_Model):
    did: str
    time_us: int
    kind: Literal["account"]
    account: Account


JetstreamEvent = Annotated[CommitEvent | IdentityEvent | AccountEvent, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[CommitEvent | IdentityEvent | AccountEvent] = TypeAdapter(JetstreamEvent)


def parse_event(data: bytes | str) -> CommitEvent | IdentityEvent | AccountEvent:
    """Validate one Jetstream JSON event; raises pydantic's ValidationError naming the field."""
    return _ADAPTER.validate_json(data)
