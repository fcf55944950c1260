"""Fixtures for the HTTP suite: a loopback Jobmon stub and gateways with fast back-off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from swarmfold.shell.http.gateway import JobmonGateway, RetryPolicy

from .jobmon_stub import JobmonStub, StubTask, layered_tasks

#: Back-off in milliseconds, so retry tests take no time.
FAST_RETRY = RetryPolicy(max_attempts=10, max_seconds=30.0, backoff_base=0.01, backoff_max=0.05)


@pytest.fixture
def stub() -> Iterator[JobmonStub]:
    with JobmonStub(layered_tasks(12, layers=3)) as server:
        yield server


def gateway_for(stub: JobmonStub, **kwargs: object) -> JobmonGateway:
    kwargs.setdefault("retry", FAST_RETRY)
    kwargs.setdefault("timeout", 2.0)
    return JobmonGateway(stub.url, route_prefix=stub.prefix, **kwargs)  # type: ignore[arg-type]


__all__ = ["FAST_RETRY", "JobmonStub", "StubTask", "gateway_for", "layered_tasks"]
