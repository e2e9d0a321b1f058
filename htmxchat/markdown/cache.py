"""A bounded, thread-safe cache of rendered HTML that others can fill in.

`functools.lru_cache` can only be filled by calling the function it wraps; renders done
elsewhere (the render process, `worker.py`) must land in the very cache the templates read,
so the page finds them and renders exactly as if they had been made here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from markupsafe import Markup

K = TypeVar("K", bound=Hashable)


class RenderCache(Generic[K]):
    """Rendered HTML by key, the `maxsize` most recently used kept; `make` renders a miss.

    `make` runs outside the lock: two threads missing the same key may both render it,
    which costs time but never gives a wrong answer (rendering is deterministic).
    """

    def __init__(self, make: Callable[[K], Markup], maxsize: int) -> None:
        self._make = make
        self._maxsize = maxsize
        self._entries: OrderedDict[K, Markup] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, key: K) -> Markup:
        """The HTML of `key`, rendered now if it is not cached."""
        with self._lock:
            html = self._entries.get(key)
            if html is not None:
                self._entries.move_to_end(key)
                return html
        html = self._make(key)
        self.put(key, html)
        return html

    def __contains__(self, key: K) -> bool:
        with self._lock:
            return key in self._entries

    def put(self, key: K, html: Markup) -> None:
        """Remember `html` as the render of `key` (made elsewhere, or just now)."""
        with self._lock:
            self._entries[key] = html
            self._entries.move_to_end(key)
            while len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
