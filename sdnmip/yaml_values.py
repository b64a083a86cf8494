"""Why PyYAML raised a ValueError (not a YAMLError) for a document a person wrote.

PyYAML builds some values with Python constructors that raise ValueError: an integer of
thousands of digits (Python's int digit limit, CVE-2020-10735), a timestamp that is no date
(`2001-13-01`: "month must be in 1..12"). Every loader of a user's file reports the reason in
one line; this module words it. It imports nothing of the project, so every package may use it.
"""

from __future__ import annotations

_INT_DIGIT_LIMIT = "integer string conversion"  # in Python's message for the digit limit


def value_error_reason(exc: ValueError) -> str:
    """The reason in words fit for a one-line error after "not valid YAML: "."""
    text = str(exc)
    if _INT_DIGIT_LIMIT in text:
        return "a number has thousands of digits"
    return text or type(exc).__name__
