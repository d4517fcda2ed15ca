"""A lock for module-wide state that a forked child gets anew."""

from __future__ import annotations

import os
import threading


class ForkSafeLock:
    """``with lock:`` as a ``threading.Lock``, replaced in a forked child: a thread of the
    parent that held it does not exist there, and the child would wait for ever."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._renew)

    def _renew(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> ForkSafeLock:
        self._lock.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self._lock.release()
