"""The one progress bar of esox's commands (``esox demo``, ``esox bench``): a
rewritten line on a terminal, plain lines elsewhere (logs, pipes, CI)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]

LINE = 120


class Progress:
    """Progress through ``total`` steps. Steps are either counted in one go
    (``update``, for a loop of many small steps) or run one by one with a
    label each (``start`` then ``finish``, for a few long steps)."""

    WIDTH = 24

    def __init__(
        self, total: int, stream: TextIO | None = None, *, label: str = ""
    ) -> None:
        self.total = total
        self.label = label
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self._percent = -1

    def _bar(self) -> str:
        filled = self.WIDTH * self.done // max(self.total, 1)
        return "[" + "#" * filled + "-" * (self.WIDTH - filled) + "]"

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def update(self, done: int) -> None:
        """``done`` steps of the total are done: redraw on a terminal (when the
        percentage moves), or write a line at every quarter elsewhere."""
        self.done = done
        percent = done * 100 // max(self.total, 1)
        if percent == self._percent or (not self.tty and percent % 25):
            return
        self._percent = percent
        line = f"{self.label} {self._bar()} {percent:3d}% {done}/{self.total}"
        end = "\r" if self.tty and done < self.total else "\n"
        self._write(line.lstrip() + end)

    def start(self, label: str) -> None:
        """Show the step about to run (on a terminal only)."""
        if self.tty:
            line = f"\r{self._bar()} {self.done}/{self.total} {label}"
            self._write(line[:LINE].ljust(LINE))

    def finish(self, label: str, seconds: float, status: str = "") -> None:
        """Count one step as done, with how long it took and how it went."""
        self.done += 1
        width = len(str(self.total))
        text = f"[{self.done:>{width}}/{self.total}] {label} ({seconds:.1f}s)"
        if status:
            text += f" {status}"
        if self.tty:
            self._write("\r" + " " * LINE + "\r" + (text + "\n" if status else ""))
        else:
            self._write(text + "\n")

    def close(self, what: str = "steps") -> None:
        """End the bar's line with the count and the total time."""
        elapsed = time.monotonic() - self.started
        clear = "\r" + " " * LINE + "\r" if self.tty else ""
        self._write(f"{clear}{self.done} {what} in {elapsed:.0f}s\n")
