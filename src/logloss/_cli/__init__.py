"""The command line: ``logloss score``, ``compare``, ``report``, ``explain`` and ``demo`` (``main(argv)`` for tests,
``entrypoint()`` for the console script)."""

from .main import entrypoint, main

__all__ = ["entrypoint", "main"]
