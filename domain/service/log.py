"""Reading the event log in order, a page at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from eventsourcing.application import Application

PAGE_SIZE = 2_000


def max_position(app: Application) -> int:
    return app.recorder.max_notification_id() or 0


def iter_notifications(
    app: Application,
    *,
    after: int = 0,
    until: int | None = None,
    topics: tuple[str, ...] = (),
    page_size: int = PAGE_SIZE,
):
    """Stored notifications with position > ``after`` (and <= ``until``), oldest first."""
    position = after
    while True:
        page = app.recorder.select_notifications(
            start=position, limit=page_size, stop=until, topics=topics, inclusive_of_start=False
        )
        if not page:
            return
        yield from page
        position = page[-1].id
        if len(page) < page_size:
            return


def iter_events(
    app: Application, *, after: int = 0, until: int | None = None, topics: tuple[str, ...] = ()
) -> Iterator[tuple[int, Any]]:
    """(position, domain event) pairs, decoded with the application's mapper."""
    to_domain_event = app.mapper.to_domain_event
    for notification in iter_notifications(app, after=after, until=until, topics=topics):
        yield notification.id, to_domain_event(notification)
