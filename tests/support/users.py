"""Users for tests: a staff member holding the permissions a test names."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from tests.support.browser import PASSWORD


def staff_client(client: Client, *codenames: str) -> Client:
    """``client`` logged in as a staff member holding the permissions ``codenames`` (without
    their app label)."""
    user = get_user_model().objects.create_user("staff", password=PASSWORD, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client
