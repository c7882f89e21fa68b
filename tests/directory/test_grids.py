"""Grid codes against `directory.grid_code_pattern`, and which prefixes can start one."""

from __future__ import annotations

import pytest

from huying.directory.grids import DEFAULT_GRID_CODE_PATTERN, GridCodes


def test_the_default_is_fifteen_digits() -> None:
    codes = GridCodes()
    assert codes.pattern == DEFAULT_GRID_CODE_PATTERN == r"\d{15}"
    assert codes.code_problem("440112012001001") is None
    for bad in ("44011201200100", "4401120120010011", "44011201200100A", ""):
        assert codes.code_problem(bad) is not None, bad


@pytest.mark.parametrize(
    ("pattern", "good", "bad"),
    [
        (r"\d{15}", ["4", "440112", "440112012001001"], ["", "4401120120010011", "44a"]),
        (r"[A-Z]{2}\d{4}", ["G", "GZ", "GZ01", "GZ0001"], ["1", "G1", "GZ00001", "gz"]),
        (r"(?i)gz\d{3}|X\d{2}", ["g", "GZ1", "X1", "x12"], ["Y", "X123", "GZA"]),
        (r"\d+(?:[A-F]\d+)*", ["1", "12A", "12A3B"], ["A", "12AB"]),
        (r"[^0-9]{2}\w*", ["ab", "ab12"], ["1", "a1"]),
    ],
)
def test_a_prefix_must_start_some_matching_code(
    pattern: str, good: list[str], bad: list[str]
) -> None:
    codes = GridCodes(pattern)
    for prefix in good:
        assert codes.prefix_problem(prefix) is None, prefix
    for prefix in bad:
        problem = codes.prefix_problem(prefix)
        assert problem == f"no grid code matching the pattern {pattern} starts with {prefix!r}"


def test_a_pattern_the_walk_cannot_follow_leaves_prefixes_to_the_schema() -> None:
    codes = GridCodes(r"(\d)\1{3}")  # a backreference
    assert codes.prefix_problem("12") is None
    assert codes.code_problem("1111") is None and codes.code_problem("1211") is not None
