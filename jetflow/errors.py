"""jetflow's exceptions: one root, split by the phase where things went wrong.

::

    JetflowError
    ├── ConfigError              bad option, bad pipeline file, bad argument (names the field)
    ├── ConnectError             cannot reach or talk to a relay, Jetstream or sink endpoint
    │   └── UpstreamError        the upstream answered with an error frame (FutureCursor, ...)
    ├── DecodeError              bytes that do not follow the firehose / Jetstream wire rules
    │   ├── MalformedFrameError  a websocket frame that is not a valid header + body
    │   ├── MalformedCARError    a ``blocks`` field that is not a readable CAR file
    │   ├── InvalidRecordError   a record that breaks the rules of spec §9 / §0.1
    │   └── CaptureError         a capture file that is truncated or corrupt (names file, offset)
    ├── StoreError               the event store cannot be opened, read or written
    ├── SinkError                a sink cannot accept events (file system, remote endpoint)
    └── UserFunctionError        a user's function raised, under the pipeline's "stop" policy

Every error carries a message that names the input it is about, so it can be logged as is.
"""

from __future__ import annotations

from typing import Any


class JetflowError(Exception):
    """Root of every error jetflow raises on purpose."""


class ConfigError(JetflowError, ValueError):
    """An option, argument or pipeline file is invalid; the message names the field."""


class ConnectError(JetflowError, ConnectionError):
    """A network peer could not be reached or broke the protocol."""


class UpstreamError(ConnectError):
    """The upstream sent an error frame; ``name`` is its error name, e.g. ``FutureCursor``."""

    def __init__(self, name: str, message: str | None = None) -> None:
        self.name = name
        self.message = message
        super().__init__(f"{name}: {message}" if message else name)


class DecodeError(JetflowError, ValueError):
    """Bytes that are not what the wire format promises."""


class MalformedFrameError(DecodeError):
    """A websocket frame that is not a canonical DAG-CBOR header followed by a body."""


class MalformedCARError(DecodeError):
    """A commit's ``blocks`` field is not a readable CAR file."""


class InvalidRecordError(DecodeError):
    """A record that Jetstream would refuse to render (spec §9 and §0.1)."""


class CaptureError(DecodeError):
    """A capture file is truncated or corrupt at ``offset``."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        super().__init__(f"{path}: {reason} at byte offset {offset}")


class StoreError(JetflowError):
    """The event store failed."""


class SinkError(JetflowError):
    """A sink could not accept or deliver events."""


class UserFunctionError(JetflowError):
    """A user function raised under a pipeline's ``"stop"`` policy.

    ``failed`` (a :class:`jetflow.userfn.FailedEvent`) names the function, the exception and
    the event (``did=… collection=… rkey=…``); ``__cause__`` is the original exception.
    """

    def __init__(self, failed: Any) -> None:
        self.failed = failed
        super().__init__(failed.message)
