"""The port: eventsourcing's files made to import esox, and nothing else.

The rules are the table REWRITE_RULES below (reviewed: each row says what it
touches and why). Everything else in a file is copied byte for byte: test
logic, messages asserted on, database names (the bare word "eventsourcing"
is also the PostgreSQL role, database and password the tests use), comments
and prose.

Python source is rewritten token by token (tokenize), so a rule can only
touch a NAME token or a string literal, never a comment or other text. The
Python code blocks of README.md and docs/**/*.rst are found the way
tests/docs_tests/test_docs.py finds them and rewritten the same way; prose
around them is left alone.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass
from typing import Final

SOURCE_PACKAGE: Final = "eventsourcing"
TARGET_PACKAGE: Final = "esox"

# eventsourcing 9.5's modules: a string literal is rewritten only where it
# names one of these ("eventsourcing.sqlite", "eventsourcing.popo:POPOFactory",
# "<class 'eventsourcing.system.Leader'>"); "eventsourcing.module isn't ..."
# or "old.eventsourcing.domain" (a made-up alias topic) are not module names.
MODULES: Final = frozenset(
    {
        "application",
        "cipher",
        "compressor",
        "cryptography",
        "dcb",
        "dispatch",
        "domain",
        "interface",
        "persistence",
        "popo",
        "postgres",
        "projection",
        "sqlite",
        "system",
        "tests",
        "utils",
    }
)


@dataclass(frozen=True)
class Rule:
    """One row of the table: which tokens it touches, the change, and why."""

    touches: str
    pattern: re.Pattern[str]
    replacement: str
    why: str


_MODULE_ALTERNATION = "|".join(sorted(MODULES))

# THE TABLE. Review any change to it: it is the whole of the port.
REWRITE_RULES: Final[tuple[Rule, ...]] = (
    Rule(
        touches="NAME",
        # The identifier `eventsourcing` as a whole token, not after a dot:
        # `import eventsourcing`, `from eventsourcing.domain import X`,
        # `import eventsourcing.popo`, `eventsourcing.domain.TZINFO`,
        # `eventsourcing.__file__`, `register_topic("old", eventsourcing)`.
        pattern=re.compile(r"\Aeventsourcing\Z"),
        replacement=TARGET_PACKAGE,
        why="imports and the module references they bind",
    ),
    Rule(
        touches="STRING",
        # eventsourcing.<module> inside a string literal: persistence-module
        # names ("eventsourcing.sqlite"), topics ("eventsourcing.cipher:AESCipher"),
        # class reprs asserted on, and docs_tests' generated import line.
        pattern=re.compile(
            rf"(?<![\w.])eventsourcing(?=\.(?:{_MODULE_ALTERNATION})\b)"
        ),
        replacement=TARGET_PACKAGE,
        why="persistence-module names and topics naming eventsourcing's modules",
    ),
)


def _line_offsets(source: str) -> list[int]:
    offsets = [0]
    for line in source.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return offsets


def rewrite_python(source: str) -> str:
    """Apply REWRITE_RULES to the tokens of Python source.

    Raises tokenize.TokenError or SyntaxError (IndentationError) when the
    source does not tokenize: callers decide what to do then.
    """
    offsets = _line_offsets(source)
    edits: list[tuple[int, int, str]] = []
    previous_significant = ""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for token in tokens:
        kind = tokenize.tok_name[token.type]
        # Python 3.12+ splits f-strings (PEP 701): their literal text comes
        # as FSTRING_MIDDLE tokens, rewritten as strings are.
        if kind == "FSTRING_MIDDLE":
            kind = "STRING"
        if kind in {"NAME", "STRING"} and not (
            kind == "NAME" and previous_significant == "."
        ):
            new = token.string
            for rule in REWRITE_RULES:
                if rule.touches == kind:
                    new = rule.pattern.sub(rule.replacement, new)
            start = offsets[token.start[0] - 1] + token.start[1]
            end = offsets[token.end[0] - 1] + token.end[1]
            # (A middle with "{{" spans more text than its string: left alone.)
            if new != token.string and source[start:end] == token.string:
                edits.append((start, end, new))
        if kind not in {"NL", "NEWLINE", "COMMENT", "INDENT", "DEDENT"}:
            previous_significant = token.string
    for start, end, new in reversed(edits):
        source = source[:start] + new + source[end:]
    return source


# Fallback for a docs code block that does not tokenize on its own (rare):
# the same two rules, applied to import statements and quoted strings only.
_IMPORT_LINE = re.compile(r"^(\s*(?:from|import)\s+)eventsourcing\b")
_QUOTED = re.compile(r"(['\"])(.*?)\1")


def _rewrite_line_fallback(line: str) -> str:
    line = _IMPORT_LINE.sub(rf"\g<1>{TARGET_PACKAGE}", line)
    string_rule = REWRITE_RULES[1].pattern
    return _QUOTED.sub(
        lambda m: m.group(1) + string_rule.sub(TARGET_PACKAGE, m.group(2)) + m.group(1),
        line,
    )


def _rewrite_block(block: list[str], indent: int) -> list[str]:
    """Rewrite one code block (lines with their newlines, `indent` columns deep)."""
    cut = [
        indent if line.strip() and not line[:indent].strip() else 0 for line in block
    ]
    dedented = [line[n:] for line, n in zip(block, cut, strict=True)]
    # rst directive options (":emphasize-lines: 2") are not Python: blank
    # them for tokenizing; they hold nothing to rewrite.
    tokenizable = [
        "\n" if indent and line.lstrip().startswith(":") else line for line in dedented
    ]
    try:
        rewritten = rewrite_python("".join(tokenizable)).splitlines(keepends=True)
    except (tokenize.TokenError, SyntaxError):
        rewritten = []
    if len(rewritten) != len(block):  # did not tokenize: the line-wise fallback
        rewritten = [_rewrite_line_fallback(line) for line in dedented]
    else:
        rewritten = [
            original if tok is not original else new
            for original, tok, new in zip(dedented, tokenizable, rewritten, strict=True)
        ]
    return [line[:n] + new for line, n, new in zip(block, cut, rewritten, strict=True)]


def rewrite_doc(text: str, markdown: bool) -> str:
    """Rewrite the Python code blocks of a README.md or .rst file.

    Blocks are found as tests/docs_tests/test_docs.py finds them: markdown
    fences opened by ```python; rst `.. code-block:: python` (or a `..`
    after an `include-when-testing` comment) followed by indented lines.
    """
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    last_line = ""
    while i < len(lines):
        line = lines[i]
        stripped = line.rstrip("\n")
        starts_md = markdown and stripped.startswith("```python")
        starts_rst = not markdown and (
            stripped.startswith(".. code-block:: python")
            or (stripped.strip() == ".." and "include-when-testing" in last_line)
        )
        out.append(line)
        last_line = line
        i += 1
        if not (starts_md or starts_rst):
            continue
        block: list[str] = []
        while i < len(lines):
            candidate = lines[i].rstrip("\n")
            if markdown and candidate.startswith("```"):
                break
            if not markdown and candidate and not candidate.startswith(" "):
                break
            block.append(lines[i])
            i += 1
        out.extend(_rewrite_block(block, 0 if markdown else 4))
        if block:
            last_line = block[-1]
    return "".join(out)
