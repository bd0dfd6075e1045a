"""The subject scheme: where each event goes in the stream, and the filters that select it.

::

    <prefix>.evt.commit.<collection tokens>  commits: app.bsky.feed.post is
                                             jetflow.evt.commit.app.bsky.feed.post
    <prefix>.evt.commit._                    commits whose collection cannot be subject tokens
    <prefix>.evt.identity                    identity events
    <prefix>.evt.account                     account events
    <prefix>.ctl.writer                      the ingest writer's epochs (fencing; no event)

The prefix is ``jetflow`` unless configured. An NSID's dots become subject tokens, so a
``wantedCollections`` prefix ``app.bsky.*`` is the server-side filter ``….commit.app.bsky.>``
and ``app.bsky.feed.post`` is itself. DIDs never appear in subjects (``did:web`` DIDs contain
dots, and a subject per DID would explode the server's subject index): DID filters run in the
client.

A collection is *subject-safe* when every dot-separated token is non-empty and made of
``[A-Za-z0-9-]`` (every valid NSID is). Anything else (an empty collection, spaces, ``*``,
``>``) goes to ``….commit._``; ``_`` cannot occur in an NSID, so that token never collides.
Every collection filter includes ``….commit._`` (and identity and account, which pass
collection filters in Jetstream, spec §4) and the client applies the exact rule on top, so a
server-side filter never drops an event Jetstream's rules would deliver.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from jetflow.errors import ConfigError

DEFAULT_PREFIX = "jetflow"
DEFAULT_STREAM = "JETFLOW"
ODD = "_"
_TOKENS = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_PREFIX = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_STREAM = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_prefix(prefix: str) -> str:
    """A subject prefix: dot-separated tokens without wildcards."""
    if not _PREFIX.fullmatch(prefix):
        raise ConfigError(f"subject: {prefix!r} is not a subject prefix like 'jetflow'")
    return prefix


def check_stream(name: str) -> str:
    if not _STREAM.fullmatch(name):
        raise ConfigError(f"stream: {name!r} is not a stream name ([A-Za-z0-9_-], at most 64)")
    return name


def is_subject_safe(collection: str) -> bool:
    return _TOKENS.fullmatch(collection) is not None


class Subjects:
    """The subjects of one stream prefix (see the module docstring)."""

    __slots__ = (
        "_commit",
        "account",
        "all_events",
        "commits",
        "identity",
        "odd",
        "prefix",
        "writer",
    )

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = check_prefix(prefix)
        self._commit = f"{prefix}.evt.commit."
        self.commits = f"{prefix}.evt.commit.>"
        self.odd = f"{prefix}.evt.commit.{ODD}"
        self.identity = f"{prefix}.evt.identity"
        self.account = f"{prefix}.evt.account"
        self.all_events = f"{prefix}.evt.>"
        self.writer = f"{prefix}.ctl.writer"

    @property
    def stream_subjects(self) -> list[str]:
        """What a stream for this prefix must capture."""
        return [f"{self.prefix}.>"]

    def for_event(self, kind: str, collection: str) -> str:
        if kind == "commit":
            if collection and is_subject_safe(collection):
                return self._commit + collection
            return self.odd
        if kind == "identity":
            return self.identity
        if kind == "account":
            return self.account
        raise ConfigError(f"events of kind {kind!r} are not published to the broker")

    def collection_of(self, subject: str) -> str | None:
        """The collection of a commit subject (None for other kinds or ``….commit._``)."""
        if subject.startswith(self._commit):
            collection = subject[len(self._commit) :]
            return None if collection == ODD else collection
        return None

    def filters(self, collections: Iterable[str] | None, prefixes: Iterable[str] = ()) -> list[str]:
        """Server-side filter subjects for Jetstream's collection rules, without overlaps.

        ``collections`` are exact NSIDs, ``prefixes`` keep their final dot (``app.bsky.``).
        None means no collection filter: every event subject.
        """
        if collections is None:
            return [self.all_events]
        wanted_prefixes: set[str] = set()
        for prefix in prefixes:
            stem = prefix[:-1] if prefix.endswith(".") else None
            if stem and is_subject_safe(stem):
                wanted_prefixes.add(stem)
            # Any other prefix can only match collections that are not subject-safe: ``_``.
        # Drop prefixes covered by shorter ones (overlapping filters are refused by NATS).
        kept: list[str] = []
        for stem in sorted(wanted_prefixes, key=len):
            if not any(stem.startswith(other + ".") for other in kept):
                kept.append(stem)
        exact = sorted(
            collection
            for collection in set(collections)
            if is_subject_safe(collection)
            and not any(collection.startswith(stem + ".") for stem in kept)
        )
        return [
            *(self._commit + stem + ".>" for stem in kept),
            *(self._commit + collection for collection in exact),
            self.odd,
            self.identity,
            self.account,
        ]
