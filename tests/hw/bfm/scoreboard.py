"""An in-order scoreboard: a monitor's transactions against a reference model's (STYLE.md #10)."""
from __future__ import annotations

import logging
from collections import deque
from typing import Any, Iterable

__all__ = ["Scoreboard"]


class Scoreboard:
    """Checks that what a monitor reports equals what a reference model expects, in order.

    Wire a monitor's callback to :meth:`observe` and give the expected transactions with
    :meth:`expect` (before or while the bench runs); end the test with :meth:`check`, which
    raises if any transaction differed, came unexpected, or never came.

    Parameters
    ----------
    name : str
        For messages.
    max_errors : int
        Mismatches kept for the final message (all are counted).

    Raises
    ------
    ValueError
        For an empty ``name`` or a ``max_errors`` below 1.
    """

    def __init__(self, *, name: str, max_errors: int = 10) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, not {name!r}")
        if not isinstance(max_errors, int) or max_errors < 1:
            raise ValueError(f"max_errors must be a positive int, not {max_errors!r}")
        self.name = name
        self.max_errors = max_errors
        self._expected: deque[Any] = deque()
        self.matched = 0
        self.errors = 0
        self.messages: list[str] = []
        self.log = logging.getLogger(f"scoreboard.{name}")

    def expect(self, items: Iterable[Any]) -> None:
        """Append expected transactions, in the order they must be observed."""
        self._expected.extend(items)

    def observe(self, got: Any) -> None:
        """Compare one observed transaction with the next expected one."""
        n = self.matched + self.errors
        if not self._expected:
            self._error(f"#{n}: unexpected {got!r}")
            return
        want = self._expected.popleft()
        if got == want:
            self.matched += 1
        else:
            self._error(f"#{n}: got {got!r}, expected {want!r}")

    def _error(self, message: str) -> None:
        self.errors += 1
        self.log.error("%s: %s", self.name, message)
        if len(self.messages) < self.max_errors:
            self.messages.append(message)

    @property
    def pending(self) -> int:
        """Expected transactions not observed yet."""
        return len(self._expected)

    def check(self) -> None:
        """Raise AssertionError unless every expected transaction was observed, equal."""
        missing = [f"never observed: {t!r}" for t in list(self._expected)[:self.max_errors]]
        if self.errors or missing:
            raise AssertionError(
                f"{self.name}: {self.matched} matched, {self.errors} wrong, "
                f"{len(self._expected)} missing:\n  " + "\n  ".join(self.messages + missing))
