"""Fixtures for the exam-site tests: the site's database on SQLite and on a real
PostgreSQL (one cluster for the session, a fresh database per test), a site plan, the
server on loopback and the box's identity."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.common.crypto import Identity, make_identity
from kiosk.site import store
from tests.site.plan import Plan, write_plan
from tests.site.postgres import Cluster, running_cluster
from tests.site.serving import LoopThread, ShiftedClock, site_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'site.db'}"
        _close_this_threads_connection()
        return
    cluster: Cluster = request.getfixturevalue("postgres")
    name = cluster.create_database()
    yield cluster.url(name)
    _close_this_threads_connection()
    cluster.drop_database(name)


def _close_this_threads_connection() -> None:
    if store.database.obj is not None:
        store.database.close()


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    return write_plan(tmp_path / "plan", time.time())


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
def server(plan: Plan, db_url: str, clock: ShiftedClock) -> Iterator[LoopThread]:
    running = site_server(plan.folder, db_url, clock)
    yield running
    running.stop()


@pytest.fixture
def box() -> Identity:
    return make_identity("proctor box")
