"""The one progress bar of ``esox demo`` and ``esox bench``."""

from __future__ import annotations

import io

from esox._progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_counted_steps_write_a_line_per_quarter_when_not_a_terminal():
    out = io.StringIO()
    progress = Progress(8, out, label="Transfers")
    for done in range(1, 9):
        progress.update(done)
    assert out.getvalue().splitlines() == [
        f"Transfers [{'#' * 6}{'-' * 18}]  25% 2/8",
        f"Transfers [{'#' * 12}{'-' * 12}]  50% 4/8",
        f"Transfers [{'#' * 18}{'-' * 6}]  75% 6/8",
        f"Transfers [{'#' * 24}] 100% 8/8",
    ]


def test_counted_steps_rewrite_one_line_on_a_terminal_and_end_it():
    out = Terminal()
    progress = Progress(4, out, label="Transfers")
    for done in range(1, 5):
        progress.update(done)
    text = out.getvalue()
    assert text.count("\r") == 3
    assert text.endswith("100% 4/4\n")


def test_labelled_steps_write_one_line_each_then_a_total():
    out = io.StringIO()
    progress = Progress(2, out)
    progress.start("first")
    progress.finish("first", 1.25, "ok")
    progress.start("second")
    progress.finish("second", 0.5)
    progress.close("workloads")
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["[1/2] first (1.2s) ok", "[2/2] second (0.5s)"]
    assert lines[2].startswith("2 workloads in ")
