"""``map`` and ``tap``: run a function of your own on each item, under the error policy.

Both report an exception raised by the function together with the event that caused it (see
:mod:`jetflow.userfn`): inside a :class:`~jetflow.pipeline.Pipeline` the pipeline's
``on_error`` policy decides (stop, skip and count, or route to an error sink); elsewhere the
exception propagates with a note naming the event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc

from jetflow.errors import JetflowError
from jetflow.events import Event
from jetflow.userfn import FailedEvent, function_name, report

A = TypeVar("A")
B = TypeVar("B")


def map(fn: Callable[[A], B | None]) -> Callable[[Observable[A]], Observable[B]]:
    """Emit ``fn(item)`` for each item; a ``None`` result emits nothing.

    Args:
        fn: any function of one item (usually an event). If it raises, the item is handled
            by the pipeline's error policy and nothing is emitted for it.

    Returns:
        An operator from items to ``fn``'s results.

    Example:
        >>> texts = posts.pipe(op.map(lambda e: e.record["text"]))
    """
    name = function_name(fn)

    def operator(source: Observable[A]) -> Observable[B]:
        def subscribe(
            observer: abc.ObserverBase[B], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            on_next = observer.on_next

            def forward(item: A) -> None:
                try:
                    result = fn(item)
                except JetflowError:
                    raise
                except Exception as exc:
                    report(FailedEvent(item if isinstance(item, Event) else None, item, exc, name))
                    return
                if result is not None:
                    on_next(result)

            return source.subscribe(
                forward, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator


def tap(fn: Callable[[A], Any]) -> Callable[[Observable[A]], Observable[A]]:
    """Call ``fn(item)`` for its side effect and pass the item on unchanged.

    Args:
        fn: any function of one item; its result is ignored. If it raises, the item is
            handled by the pipeline's error policy (under ``"skip"`` it is not passed on).

    Returns:
        An operator from items to the same items.

    Example:
        >>> events.pipe(op.tap(lambda e: counter.update([e.collection])))
    """
    name = function_name(fn)

    def operator(source: Observable[A]) -> Observable[A]:
        def subscribe(
            observer: abc.ObserverBase[A], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            on_next = observer.on_next

            def forward(item: A) -> None:
                try:
                    fn(item)
                except JetflowError:
                    raise
                except Exception as exc:
                    report(FailedEvent(item if isinstance(item, Event) else None, item, exc, name))
                    return
                on_next(item)

            return source.subscribe(
                forward, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator
