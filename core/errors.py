"""Errors raised by the core. They name what is wrong and where."""

from __future__ import annotations


class SwarmfoldError(Exception):
    """Base class of every swarmfold error."""


class InvalidTopology(SwarmfoldError):
    """A DAG or topology spec that cannot be run: unknown ids, duplicates, a cycle."""


class InvalidConfig(SwarmfoldError):
    """A configuration value out of range."""


class ProtocolViolation(SwarmfoldError):
    """The event stream breaks the core's contract (our side, like h11's LocalProtocolError).

    Examples: an answer to a command that was never issued, a second RunStarted.
    """
