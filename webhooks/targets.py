"""Where webhooks may be sent: a public HTTP(S) address, checked when a subscription is saved
and again before each attempt, after resolving the host name, on the address connected to.

A receiver on a private, loopback, link-local, shared, multicast or reserved address (any
address not globally routable) is refused, so a subscription cannot make the worker probe
the service's own network (server-side request forgery); ``WEBHOOK_ALLOW_PRIVATE_TARGETS``
allows them (tests, internal deployments). The connection is made to the address that was
checked, never to a second resolution of the name (DNS rebinding), and redirects are not
followed.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

from config.input_guard import text_problem

MAX_URL_LENGTH = 2000
# The response body read at most (kept nowhere: only the status counts).
MAX_RESPONSE_BYTES = 64 * 1024


class TargetRefused(Exception):
    """The URL cannot be a webhook target; the message says why (for the ``url`` field)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with the query string


def parse(url: str) -> Target:
    """The parts of a webhook URL, or ``TargetRefused``; nothing is resolved."""
    if not isinstance(url, str) or not url:
        raise TargetRefused(_("Enter the receiver's URL."))
    if problem := text_problem(url):
        raise TargetRefused(problem)
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(_("Write at most %(limit)d characters.") % {"limit": MAX_URL_LENGTH})
    if any(ord(c) < 33 or ord(c) == 127 for c in url) or not url.isascii():
        raise TargetRefused(
            _("The URL may not contain spaces, control or non-ASCII characters (encode them).")
        )
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise TargetRefused(_("This is not a valid URL.")) from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused(_("The URL must start with https:// (or http://)."))
    if not host:
        raise TargetRefused(_("The URL has no host name."))
    if parts.username is not None or parts.password is not None:
        raise TargetRefused(_("The URL may not contain a user name or password."))
    if parts.fragment:
        raise TargetRefused(_("The URL may not contain a fragment (#…)."))
    if port == 0:
        raise TargetRefused(_("This is not a valid URL."))
    try:
        host.encode("idna")
    except UnicodeError:
        raise TargetRefused(_("This is not a valid host name.")) from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    default_port = 443 if parts.scheme == "https" else 80
    return Target(scheme=parts.scheme, host=host, port=port or default_port, path=path)


def address_allowed(address: str) -> bool:
    """Whether a webhook may be sent to this IP address (a globally routable one, unless
    ``WEBHOOK_ALLOW_PRIVATE_TARGETS``)."""
    if settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        return True
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone is local anyway
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(target: Target) -> str:
    """The address to connect to: the host's first address, every address of the host
    allowed; else ``TargetRefused``."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise TargetRefused(
            _("The host name %(host)s could not be resolved.") % {"host": target.host}
        ) from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise TargetRefused(
            _("The host name %(host)s could not be resolved.") % {"host": target.host}
        )
    for address in addresses:
        if not address_allowed(address):
            raise TargetRefused(
                _(
                    "%(host)s is a private, loopback, link-local or reserved address "
                    "(%(address)s): webhooks are sent only to public addresses."
                )
                % {"host": target.host, "address": address}
            )
    return addresses[0]


def check_url(url: str) -> Target:
    """Parse and resolve ``url`` as a subscription is saved; ``TargetRefused`` says why not."""
    target = parse(url)
    resolve(target)
    return target


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to an address already checked, sending the URL's host name."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to an address already checked; the certificate is verified for
    the URL's host name."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST ``body`` to ``url`` (its host resolved and checked now); the status code.

    ``TargetRefused`` when the address is not allowed; ``OSError`` (timeouts included) and
    ``http.client.HTTPException`` when the exchange fails.
    """
    target = parse(url)
    address = resolve(target)
    kind = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = kind(target.host, target.port, address=address, timeout=timeout)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        answer = connection.getresponse()
        answer.read(MAX_RESPONSE_BYTES)
        return answer.status
    finally:
        connection.close()
