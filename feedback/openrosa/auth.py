"""HTTP authentication of ODK clients: Basic (RFC 7617) and Digest (RFC 7616).

ODK Collect answers a 401 with either scheme. The challenge offers Digest with MD5 (what
every ODK client speaks) and with SHA-256, then Basic, as three ``WWW-Authenticate``
header lines in that order.

* **Basic** (only over HTTPS in production, where ``SECURE_SSL_REDIRECT`` holds): the
  account's own password, checked by Django's hashers, or its ODK password.
* **Digest**: the ODK password only. Digest needs a secret the server can use, the HA1
  ``H(username:realm:password)``; Django's password hashes are made to be of no such use and
  stay as they are. The ODK password is a random secret issued by the service
  (``issue_password``: ``manage.py openrosa_password USER`` or the admin), shown once; only
  its two HA1 values are stored (``OpenRosaCredential``), so a leaked HA1 opens this realm
  only, and being random the password behind it cannot be guessed from it.

Nonces are stateless: ``<time>.<HMAC of time and realm>``, valid ``OPENROSA_NONCE_SECONDS``;
an older one gets a fresh challenge with ``stale=true`` (the client retries without asking
the user). ``qop=auth`` is required; ``-sess`` algorithms are accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare

from feedback.models import OpenRosaCredential

ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
# Letters and digits that cannot be mistaken for one another when typed into a phone.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
PASSWORD_GROUPS = 5  # 5 groups of 4: about 99 bits


def realm() -> str:
    return settings.OPENROSA_REALM


def _hash(algorithm: str, text: str) -> str:
    return ALGORITHMS[algorithm](text.encode("utf-8")).hexdigest()


def ha1(algorithm: str, username: str, password: str, realm_name: str | None = None) -> str:
    return _hash(algorithm, f"{username}:{realm_name or realm()}:{password}")


def issue_password(user: AbstractBaseUser) -> str:
    """A new random ODK password for ``user``, replacing any earlier one; returned once,
    stored only as its HA1 values."""
    password = "-".join(
        "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(4)) for _ in range(PASSWORD_GROUPS)
    )
    username = user.get_username()
    OpenRosaCredential.objects.update_or_create(
        user=user,
        defaults={
            "username": username,
            "realm": realm(),
            "ha1_md5": ha1("MD5", username, password),
            "ha1_sha256": ha1("SHA-256", username, password),
        },
    )
    return password


# --- Nonces -------------------------------------------------------------------------------


def _nonce_mac(stamp: str) -> str:
    key = f"openrosa-nonce:{settings.SECRET_KEY}".encode()
    return hmac.new(key, f"{stamp}:{realm()}".encode(), hashlib.sha256).hexdigest()[:32]


def new_nonce(now: float | None = None) -> str:
    stamp = str(int(now if now is not None else time.time()))
    return f"{stamp}.{_nonce_mac(stamp)}"


def nonce_state(nonce: str, now: float | None = None) -> str:
    """``"fresh"``, ``"stale"`` (ours but too old) or ``"bad"``."""
    stamp, _sep, mac = nonce.partition(".")
    if (
        not (stamp.isascii() and stamp.isdigit())
        or len(stamp) > 12
        or not constant_time_compare(mac, _nonce_mac(stamp))
    ):
        return "bad"
    age = (now if now is not None else time.time()) - int(stamp)
    return "fresh" if -60 <= age <= settings.OPENROSA_NONCE_SECONDS else "stale"


# --- Challenge ----------------------------------------------------------------------------


class ChallengeResponse(HttpResponse):
    """A 401 whose ``WWW-Authenticate`` challenges go out as separate header lines (Django
    keeps one value per header name; the WSGI and ASGI handlers send ``items()``)."""

    challenges: list[str]

    def items(self) -> Iterator[tuple[str, str]]:  # type: ignore[override]
        for name, value in super().items():
            if name.lower() != "www-authenticate":
                yield name, value
        for challenge in self.challenges:
            yield "WWW-Authenticate", challenge


def challenges(*, stale: bool = False) -> list[str]:
    quoted = realm().replace("\\", "\\\\").replace('"', '\\"')
    nonce = new_nonce()
    opaque = hashlib.sha256(quoted.encode()).hexdigest()[:16]
    digest = [
        f'Digest realm="{quoted}", qop="auth", algorithm={algorithm}, nonce="{nonce}", '
        f'opaque="{opaque}"' + (", stale=true" if stale else "")
        for algorithm in ("MD5", "SHA-256")
    ]
    return [*digest, f'Basic realm="{quoted}", charset="UTF-8"']


def attach_challenge(response: ChallengeResponse, *, stale: bool = False) -> ChallengeResponse:
    response.challenges = challenges(stale=stale)
    # The first challenge, for clients (and test clients) that read one value only.
    response["WWW-Authenticate"] = response.challenges[0]
    return response


# --- Checking the Authorization header ----------------------------------------------------


class AuthOutcome:
    """The account authenticated (``user``), or ``None`` with whether the nonce was stale."""

    def __init__(self, user: Any = None, *, stale: bool = False) -> None:
        self.user = user
        self.stale = stale


def authenticate(request: HttpRequest) -> AuthOutcome:
    """The active account named and proved by the request's ``Authorization`` header."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _sep, rest = header.strip().partition(" ")
    if scheme.lower() == "basic":
        return AuthOutcome(_basic(rest.strip()))
    if scheme.lower() == "digest":
        return _digest(request, rest)
    return AuthOutcome()


def _active_user(username: str) -> Any:
    user_model = get_user_model()
    try:
        user = user_model._default_manager.get_by_natural_key(username)
    except (user_model.DoesNotExist, ValueError):
        return None
    return user if user.is_active else None


def _basic(token: str) -> Any:
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep or not username or "\x00" in decoded:
        return None
    user = _active_user(username)
    if user is None:
        # Spend a hasher's time anyway, so a wrong name and a wrong password look alike.
        get_user_model()().set_password(password)
        return None
    credential = OpenRosaCredential.objects.filter(user=user).first()
    if (
        credential is not None
        and _credential_current(credential, user)
        and constant_time_compare(
            ha1("SHA-256", username, password, credential.realm), credential.ha1_sha256
        )
    ):
        return user
    return user if user.check_password(password) else None


def _credential_current(credential: OpenRosaCredential, user: Any) -> bool:
    """An ODK password made for the account's present name and this realm (renaming the
    account, or changing ``OPENROSA_REALM``, needs a new ODK password)."""
    return credential.username == user.get_username() and credential.realm == realm()


_PARAM = re.compile(r'\s*([A-Za-z0-9_*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,|$)')


def parse_params(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _PARAM.match(text, position)
        if match is None:
            return {}
        name, value = match.group(1).lower(), match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[name] = value
        position = match.end()
    return params


def _digest(request: HttpRequest, text: str) -> AuthOutcome:
    params = parse_params(text)
    needed = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
    if any(not params.get(name) for name in needed) or params["qop"] != "auth":
        return AuthOutcome()
    algorithm = params.get("algorithm", "MD5").upper()
    session = algorithm.endswith("-SESS")
    algorithm = algorithm.removesuffix("-SESS")
    if algorithm not in ALGORITHMS or params["realm"] != realm():
        return AuthOutcome()
    if params["uri"] != request.get_full_path():
        return AuthOutcome()
    state = nonce_state(params["nonce"])
    if state == "bad":
        return AuthOutcome()
    user = _active_user(params["username"])
    credential = OpenRosaCredential.objects.filter(user=user).first() if user is not None else None
    if credential is None or not _credential_current(credential, user):
        return AuthOutcome()
    secret = credential.ha1_md5 if algorithm == "MD5" else credential.ha1_sha256
    if session:
        secret = _hash(algorithm, f"{secret}:{params['nonce']}:{params['cnonce']}")
    ha2 = _hash(algorithm, f"{request.method}:{params['uri']}")
    expected = _hash(
        algorithm,
        f"{secret}:{params['nonce']}:{params['nc']}:{params['cnonce']}:auth:{ha2}",
    )
    if not constant_time_compare(expected, params["response"].lower()):
        return AuthOutcome()
    if state == "stale":
        return AuthOutcome(stale=True)
    return AuthOutcome(user)
