"""Tells the app that its HTTP server has begun to shut down, before the server waits for open requests.

Granian and uvicorn both stop accepting on SIGTERM and then wait for every open request to end
before running the ASGI lifespan shutdown, so an endless response (an SSE stream) would hold the
shutdown until the server's kill timeout. serving.py calls notify() from each server's own exit
hook; long-lived responses watch the event of their app (event_for) and end when it is set.
"""

from __future__ import annotations

import asyncio
import threading
import weakref

_lock = threading.Lock()
_exiting = False
# app -> (loop, event); weak, so an app that is gone (tests build many) is forgotten.
_events: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def event_for(app) -> asyncio.Event:
    """The app's "server is exiting" event, made on first use inside the app's running loop."""
    with _lock:
        entry = _events.get(app)
        if entry is None:
            entry = (asyncio.get_running_loop(), asyncio.Event())
            _events[app] = entry
            if _exiting:
                entry[1].set()
        return entry[1]


def notify() -> None:
    """The server is exiting: set every app's event. Safe from any thread or signal handler."""
    global _exiting
    with _lock:
        _exiting = True
        entries = list(_events.values())
    for loop, event in entries:
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # that loop is closed already
            pass
