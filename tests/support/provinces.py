"""Two provinces and their staff, for the tests of who sees what (province staff, agency
results): one world per test module, built in a transaction rolled back at its end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client

from surveys import scoping
from tests.factories import AgencyFactory, UnitFactory
from tests.support.browser import PASSWORD


def two_provinces(world: SimpleNamespace) -> None:
    """``world.a`` (PA, Tỉnh A, in the north) and ``world.b`` (PB, Tỉnh B, in the south), each
    with its department of construction: ``world.a_build`` (PA-SXD), ``world.b_build`` (PB-SXD)."""
    world.a = UnitFactory(code="PA", name="Tỉnh A", region="Bắc")
    world.b = UnitFactory(code="PB", name="Tỉnh B", region="Nam")
    world.a_build = AgencyFactory(unit=world.a, code="PA-SXD", name_vi="Sở Xây dựng A")
    world.b_build = AgencyFactory(unit=world.b, code="PB-SXD", name_vi="Sở Xây dựng B")


def province_roles(world: SimpleNamespace) -> None:
    """The staff of ``world.a`` and of ``world.b``, national staff (the role's permissions, no
    province), a superuser, and staff without the role (``plain``)."""
    users = get_user_model().objects
    world.staff_a = users.create_user("staff-a", password=PASSWORD)
    scoping.appoint(user=world.staff_a, unit=world.a)
    world.staff_b = users.create_user("staff-b", password=PASSWORD)
    scoping.appoint(user=world.staff_b, unit=world.b)
    world.national = users.create_user("national", password=PASSWORD, is_staff=True)
    world.national.user_permissions.add(*scoping.ensure_group().permissions.all())
    world.superuser = users.create_superuser("root", password=PASSWORD)
    world.plain = users.create_user("plain", password=PASSWORD, is_staff=True)


@contextmanager
def rolled_back(django_db_blocker: Any) -> Iterator[None]:
    """A transaction for a module's world, rolled back at the end; each test runs in a
    savepoint of it. ``MIN_PUBLISH_N`` is 2 meanwhile."""
    outer = transaction.atomic()
    outer._from_testcase = True  # as Django's TestCase: services' durable blocks nest in it
    with django_db_blocker.unblock(), outer:
        saved = settings.MIN_PUBLISH_N
        settings.MIN_PUBLISH_N = 2
        try:
            yield
        finally:
            settings.MIN_PUBLISH_N = saved
            transaction.set_rollback(True)


@pytest.fixture(scope="module")
def world(
    request: pytest.FixtureRequest, django_db_setup: Any, django_db_blocker: Any
) -> Iterator[SimpleNamespace]:
    """What the test module's ``build_world()`` builds, once per module, rolled back at its end
    (a module takes it with ``world = provinces.world``)."""
    with rolled_back(django_db_blocker):
        yield request.module.build_world()


def login(user: Any) -> Client:
    """A client logged in as ``user`` (anonymous for ``None``)."""
    client = Client()
    if user is not None:
        client.force_login(user)
    return client
