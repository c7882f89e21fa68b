"""The Unified Social Credit Code (统一社会信用代码, GB 32100-2015).

18 characters from `0123456789ABCDEFGHJKLMNPQRTUWXY` (no I, O, S, V, Z): a
registration-authority character (1 digit or letter such as A, N, Y), an
institution-type character, a 6-digit administrative-division code, a 9-character
organisation code, and a check character: with weights 3^(i-1) mod 31 over the
first 17, check = (31 - sum mod 31) mod 31.
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_WEIGHTS = [pow(3, i, 31) for i in range(17)]


def check_character(first17: str) -> str:
    """The check character for 17 characters of the alphabet (ValueError otherwise)."""
    if len(first17) != 17:
        raise ValueError("expected 17 characters")
    try:
        total = sum(_VALUE[c] * w for c, w in zip(first17, _WEIGHTS, strict=True))
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not allowed in a USCC") from None
    return ALPHABET[(31 - total % 31) % 31]


def uscc_problem(code: str) -> str | None:
    """Why `code` is not a valid USCC, or None when it is."""
    if len(code) != 18:
        return f"a USCC has 18 characters, this has {len(code)}"
    bad = sorted({c for c in code if c not in _VALUE})
    if bad:
        return (
            f"characters {''.join(bad)!r} are not allowed "
            "(digits and capital letters except I, O, S, V, Z)"
        )
    expected = check_character(code[:17])
    if code[17] != expected:
        return f"check character is {code[17]!r}, expected {expected!r}"
    return None


def is_valid(code: str) -> bool:
    return uscc_problem(code) is None
