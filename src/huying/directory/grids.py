"""Grid codes: what an enterprise's code must look like, and which routing-rule prefixes fit.

`directory.grid_code_pattern` is a regular expression a grid code must match in full (the
default, `\\d{15}`, is district 6 + street 3 + community 3 + cell 3 digits). A routing rule's
grid prefix must be the start of at least one code that matches: for the default, 1 to 15
digits. That is decided by walking the parsed pattern over the prefix (the standard library
has no partial match). Lookarounds and anchors are let through unchecked, and a pattern with a
backreference or a conditional group leaves the prefix to the schema's own check (letters and
digits), so a prefix is refused only when it certainly cannot start a code.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from huying.settings import DirectorySettings

DEFAULT_GRID_CODE_PATTERN: str = DirectorySettings.model_fields["grid_code_pattern"].default


def _parse(pattern: str) -> Any:
    """The parse tree of `pattern`, or None if the private parser behind `re` is not what it
    was. It is the only way to tell whether a text can start a match (no public API does);
    Python 3.11 renamed it from sre_parse, which is deprecated."""
    try:
        parser = importlib.import_module("re._parser")
        return parser.parse(pattern), int(parser.MAXREPEAT)
    except (ImportError, AttributeError):
        return None


class _Unsupported(Exception):
    """The pattern uses a construct the prefix walk does not follow."""


class GridCodes:
    def __init__(self, pattern: str = DEFAULT_GRID_CODE_PATTERN) -> None:
        self.pattern = pattern
        self._regex = re.compile(pattern)
        self._parsed = _parse(pattern)

    def code_problem(self, code: str) -> str | None:
        """Why `code` is not a grid code, or None when it is."""
        if self._regex.fullmatch(code) is None:
            return f"{code!r} does not match the grid code pattern {self.pattern}"
        return None

    def prefix_problem(self, prefix: str) -> str | None:
        """Why no grid code can start with `prefix`, or None when one can."""
        if prefix and self._could_start(prefix):
            return None
        return f"no grid code matching the pattern {self.pattern} starts with {prefix!r}"

    def _could_start(self, prefix: str) -> bool:
        if self._parsed is None:
            return True
        tree, maxrepeat = self._parsed
        walk = _Walk(prefix, int(tree.state.flags), maxrepeat)
        try:
            walk.sequence(tree, {0})
        except _Unsupported:
            return True
        return walk.reached_end


class _Walk:
    """Follows every way the pattern can consume the text; `reached_end` once one consumes it
    all, wherever in the pattern that happens (the rest of the pattern can still be matched by
    some continuation)."""

    def __init__(self, text: str, flags: int, maxrepeat: int) -> None:
        self.text = text
        self.maxrepeat = maxrepeat
        self.ignore_case = bool(flags & re.IGNORECASE)
        self.ascii = bool(flags & re.ASCII)
        self.reached_end = False

    def sequence(self, items: Any, starts: set[int]) -> set[int]:
        for op, arg in items:
            starts = self.item(str(op), arg, starts)
            if not starts:
                break
        return starts

    def item(self, op: str, arg: Any, starts: set[int]) -> set[int]:
        if op in ("LITERAL", "NOT_LITERAL", "ANY", "IN"):
            test = self._char_test(op, arg)
            ends = {i + 1 for i in starts if i < len(self.text) and test(self.text[i])}
            self.reached_end |= len(self.text) in ends
            return ends
        if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            return self._repeat(low, high, sub, starts)
        if op == "SUBPATTERN":
            return self.sequence(arg[-1], starts)
        if op == "ATOMIC_GROUP":
            return self.sequence(arg, starts)
        if op == "BRANCH":
            after: set[int] = set()
            for alternative in arg[1]:
                after |= self.sequence(alternative, set(starts))
            return after
        if op in ("AT", "ASSERT", "ASSERT_NOT"):  # zero-width: let every path through
            return starts
        raise _Unsupported(op)

    def _repeat(self, low: int, high: int, sub: Any, starts: set[int]) -> set[int]:
        ends = set(starts) if low == 0 else set()
        current, count = set(starts), 0
        while current and (high == self.maxrepeat or count < high):
            current = self.sequence(sub, current)
            count += 1
            if count >= low:
                if current <= ends:
                    break  # no new position: more rounds cannot add any
                ends |= current
        return ends

    def _char_test(self, op: str, arg: Any) -> Callable[[str], bool]:
        if op == "ANY":
            return lambda c: True
        if op in ("LITERAL", "NOT_LITERAL"):
            wanted = self._fold(chr(arg))
            if op == "LITERAL":
                return lambda c: self._fold(c) == wanted
            return lambda c: self._fold(c) != wanted
        return lambda c: self._in_set(c, arg)

    def _in_set(self, char: str, items: Any) -> bool:
        negate, hit = False, False
        for op, arg in items:
            name = str(op)
            if name == "NEGATE":
                negate = True
            elif name == "LITERAL":
                hit |= self._fold(char) == self._fold(chr(arg))
            elif name == "RANGE":
                low, high = arg
                forms = {char, char.lower(), char.upper()} if self.ignore_case else {char}
                hit |= any(low <= ord(c) <= high for c in forms)
            elif name == "CATEGORY":
                hit |= self._category(str(arg), char)
            else:
                raise _Unsupported(name)
        return hit != negate

    def _category(self, name: str, char: str) -> bool:
        shorthand = {
            "CATEGORY_DIGIT": r"\d",
            "CATEGORY_NOT_DIGIT": r"\D",
            "CATEGORY_SPACE": r"\s",
            "CATEGORY_NOT_SPACE": r"\S",
            "CATEGORY_WORD": r"\w",
            "CATEGORY_NOT_WORD": r"\W",
        }.get(name)
        if shorthand is None:
            raise _Unsupported(name)
        return re.fullmatch(shorthand, char, re.ASCII if self.ascii else 0) is not None

    def _fold(self, char: str) -> str:
        return char.casefold() if self.ignore_case else char
