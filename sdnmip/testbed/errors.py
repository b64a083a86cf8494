"""Errors the testbed reports to its user: each message is one line saying what, and the fix."""

from __future__ import annotations


class TestbedError(RuntimeError):
    """The testbed could not do what was asked; the message is one line for the user."""

    __test__ = False  # not a pytest test class despite the name


class PrerequisiteError(TestbedError):
    """Something the testbed needs from the machine is missing; the message names the fix."""
