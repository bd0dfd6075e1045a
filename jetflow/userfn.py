"""Errors in user functions: which event caused them, and the policy that handles them.

A *user function* is any function a pipeline's author hands to jetflow: a ``filter``
predicate, a ``count_by`` key function, the function of ``map`` / ``tap``, a ``callback``
sink. When one raises, jetflow reports the exception together with the event it was given
(``did``, ``collection``, ``rkey``) as a :class:`FailedEvent`, and the running
:class:`~jetflow.pipeline.Pipeline` applies its error policy:

``"stop"``
    the pipeline fails with :class:`UserFunctionError`, whose message names the event;
``"skip"``
    the event is skipped, counted (``pipeline.stats.skipped``) and logged;
a sink
    the :class:`FailedEvent` is sent to that sink (and counted in ``stats.routed``).

Outside a pipeline (a plain ``source.pipe(...).subscribe(...)``) the original exception
propagates, with a note naming the event.

How the event is found: functions wrapped by :func:`guard` (``op.map``, ``op.tap`` and every
function of a pipeline file) know it exactly, and a guarded predicate skips exactly one event.
For any other exception the pipeline looks for the innermost stack frame of the traceback
that held an :class:`~jetflow.events.Event` (the user function's own argument, typically);
this costs nothing until something fails.
"""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, TypeVar

import orjson

from jetflow.codec.frame import Frame
from jetflow.codec.jsonfmt import go_escape
from jetflow.errors import JetflowError, MalformedFrameError
from jetflow.events import COMMIT, Event

log = logging.getLogger("jetflow.pipeline")

R = TypeVar("R")


@dataclass(slots=True)
class FailedEvent:
    """What an error sink receives: the event a user function failed on, and the exception.

    Attributes:
        event: the event the function was given, when known.
        item: what the pipeline was processing when the exception surfaced: the event, or the
            source item (e.g. a firehose frame) it came from.
        error: the exception.
        function: ``module:qualname`` of the function that raised, when known.
    """

    event: Event | None
    item: Any
    error: BaseException
    function: str | None = None
    _json: bytes | None = field(default=None, repr=False)

    def describe(self) -> str:
        """``did=… collection=… rkey=…`` (or what is known of a frame), for log messages."""
        event = self.event
        if event is not None:
            if event.kind == COMMIT:
                return (
                    f"did={event.did} collection={event.collection} rkey={event.rkey}"
                    f" time_us={event.time_us}"
                )
            return f"did={event.did} kind={event.kind} time_us={event.time_us}"
        item = self.item
        if isinstance(item, Frame):
            try:
                return f"frame seq={item.seq} repo={item.body.get('repo') or item.body.get('did')}"
            except MalformedFrameError:
                return f"malformed frame of {len(item.data)} bytes"
        return f"item {item!r:.200}"

    @property
    def message(self) -> str:
        """One line: which function raised what, on which event."""
        where = self.function or "a user function"
        return f"{where} raised {type(self.error).__name__}: {self.error} on {self.describe()}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``error``, ``error_type``, ``function``, ``event`` (Jetstream
        shape, or None) and, for a frame, ``seq``."""
        out: dict[str, Any] = {
            "error": str(self.error),
            "error_type": type(self.error).__name__,
            "function": self.function,
            "event": self.event.to_dict() if self.event is not None else None,
        }
        if self.event is None and isinstance(self.item, Frame):
            try:
                out["seq"] = self.item.seq
            except MalformedFrameError:
                out["seq"] = None
        return out

    @property
    def json(self) -> bytes:
        """:meth:`to_dict` as JSON bytes (what file and websocket sinks write)."""
        if self._json is None:
            self._json = go_escape(orjson.dumps(self.to_dict(), default=repr))
        return self._json


Handler = Callable[[FailedEvent], None]

current_handler: contextvars.ContextVar[Handler | None] = contextvars.ContextVar(
    "jetflow_current_error_handler", default=None
)
"""The running pipeline's error policy, set in the task that pushes items (like
:data:`jetflow.flow.current_flow`). A handler returns to skip the event, or raises to stop."""


def function_name(fn: Callable[..., Any]) -> str:
    """``module:qualname`` of a function (best effort)."""
    target = getattr(fn, "__wrapped__", fn)
    module = getattr(target, "__module__", None) or "?"
    qualname = getattr(target, "__qualname__", None) or repr(target)
    return f"{module}:{qualname}"


def report(failed: FailedEvent) -> None:
    """Hand ``failed`` to the running pipeline's policy; without a pipeline, re-raise.

    Returns when the policy skipped or routed the event; raises otherwise (the original
    exception, annotated, outside a pipeline; :class:`UserFunctionError` under ``"stop"``).
    """
    handler = current_handler.get()
    if handler is None:
        error = failed.error
        if isinstance(error, Exception):
            error.add_note(
                f"jetflow: {failed.function or 'a user function'} failed on {failed.describe()}"
            )
        raise error
    handler(failed)


GuardRole = Literal["predicate", "map", "key"]


def guard(fn: Callable[[Any], R], role: GuardRole = "key") -> Callable[[Any], R]:
    """Wrap a one-argument user function so that its errors go to the pipeline's policy.

    Args:
        fn: the user function (its argument is usually an event).
        role: what to do once the policy chose to skip: a ``predicate`` returns False (the
            event is dropped), a ``map`` returns None (``map`` drops None); a ``key`` (or any
            other function) cannot skip by itself, so the error travels up to the pipeline,
            which skips the rest of the source item it came from.

    Returns:
        A function with the same result, one extra Python call per invocation.

    Example:
        >>> events.pipe(op.filter(predicate=guard(looks_like_spam, "predicate")))
    """
    name = function_name(fn)

    if role == "key":

        @functools.wraps(fn)
        def annotated(value: Any) -> R:
            try:
                return fn(value)
            except JetflowError:
                raise
            except Exception as exc:
                failed = FailedEvent(value if isinstance(value, Event) else None, value, exc, name)
                if current_handler.get() is None:
                    report(failed)  # outside a pipeline: the original exception, annotated
                raise _Located(failed) from exc

        return annotated

    fallback: Any = False if role == "predicate" else None

    @functools.wraps(fn)
    def guarded(value: Any) -> R:
        try:
            return fn(value)
        except JetflowError:
            raise
        except Exception as exc:
            report(FailedEvent(value if isinstance(value, Event) else None, value, exc, name))
            result: Any = fallback
            return result  # type: ignore[no-any-return]

    return guarded


class _Located(Exception):
    """Carries a :class:`FailedEvent` from a guarded key function up to the pipeline."""

    def __init__(self, failed: FailedEvent) -> None:
        super().__init__(failed.message)
        self.failed = failed


def failed_from_exception(item: Any, error: BaseException) -> FailedEvent:
    """The :class:`FailedEvent` for an exception that surfaced while pushing ``item``.

    A guarded function already named its event; otherwise the traceback is searched, from
    the innermost frame out, for the first frame that held an Event; failing that, ``item``
    itself when it is an event.
    """
    if isinstance(error, _Located):
        located = error.failed
        located.item = item
        return located
    event, function = _event_in_traceback(error.__traceback__)
    if event is None and isinstance(item, Event):
        event = item
    return FailedEvent(event, item, error, function)


def original(error: BaseException) -> BaseException:
    """The user's own exception behind a :class:`_Located` wrapper."""
    if isinstance(error, _Located):
        return error.failed.error
    return error


def _event_in_traceback(tb: TracebackType | None) -> tuple[Event | None, str | None]:
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for value in frame.f_locals.values():
            if isinstance(value, Event):
                module = frame.f_globals.get("__name__", "?")
                return value, f"{module}:{frame.f_code.co_qualname}"
    return None, None
