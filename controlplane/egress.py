"""Outbound HTTP to URLs that users name (webhook routes, alert hooks): one allow-list, one client.

A URL passes only when the parser that connects (urllib3's) and the standard library read the
same scheme, host and port, it carries no user information, backslash, percent-encoded or
non-ASCII host, and its host and port match an entry of ``CONTROLPLANE_WEBHOOK_ALLOWED_HOSTS``:

    host        that host on the scheme's default port only (80 for http, 443 for https)
    host:8080   that host on port 8080 only
    host:*      that host on any port
    [::1]:8080  IPv6 addresses in brackets
    10.20.0.0/16:8443, [fd00:1::/32]:*   any IP address of a network, written as an IP in the URL

Names may be shell-style patterns (``*.hooks.internal``); an IP address in a URL matches only an
entry naming that very address. IPv4 in any other form than dotted decimal (``2852039166``,
``0251.0376.0251.0376``, ``127.1``) and IPv4-mapped IPv6 (``[::ffff:169.254.169.254]``) are refused.

The same rule is applied again at connect time, to the address the name resolved to, inside the
connection itself (``PoolManager`` below), so a name that is rebound between the check and the
call cannot lead elsewhere: a name matched by a pattern may not reach loopback, link-local
(cloud metadata), unspecified, multicast or reserved addresses; only an entry ``localhost`` may
reach loopback, and only an entry naming an IP may reach that IP.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
import sys
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util import connection as u3_connection

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MIN_PREFIX = {4: 8, 6: 16}  # a wider network is not an allow-list entry but the whole internet

SETTING = "CONTROLPLANE_WEBHOOK_ALLOWED_HOSTS"
DEFAULT_PORTS = {"http": 80, "https": 443}
# Cloud metadata services outside 169.254.0.0/16 (which is refused as link-local anyway).
METADATA = {
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
}
_PRINTABLE = frozenset(chr(c) for c in range(0x21, 0x7F))


class EgressRefused(NewConnectionError):
    """The resolved address is not one the matching allow-list entry lets us reach."""


@dataclass(frozen=True)
class Entry:
    """One allow-list entry. ``port`` None means the scheme's default port."""

    text: str
    host: str  # lower-case name or pattern; for an IP, its compressed form
    ip: IPAddress | None
    port: int | None
    any_port: bool
    network: IPNetwork | None = None

    def matches(self, host: str, ip: IPAddress | None, port: int, scheme: str) -> bool:
        if not self.any_port and (self.port or DEFAULT_PORTS[scheme]) != port:
            return False
        if self.network is not None:
            return ip is not None and ip.version == self.network.version and ip in self.network
        if ip is not None or self.ip is not None:
            return ip is not None and ip == self.ip
        return fnmatch.fnmatchcase(host, self.host)

    def may_reach(self, address: IPAddress) -> bool:
        """May a connection for this entry go to ``address`` (what its name resolved to)?"""
        if self.ip is not None:
            return address == self.ip
        if self.network is not None:
            # A network is a range of ordinary hosts: loopback only when the network is itself
            # loopback, and never link-local, metadata or the other unroutable addresses.
            if address.version != self.network.version or address not in self.network:
                return False
            return routable(address) or (address.is_loopback and self.network.is_loopback)
        if self.host == "localhost":
            return address.is_loopback
        return routable(address)


def routable(address: IPAddress) -> bool:
    """An address a name matched by a pattern may resolve to."""
    embedded = [address]
    if isinstance(address, ipaddress.IPv6Address):
        embedded += [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
        if address.teredo:
            embedded += list(address.teredo)
    for a in embedded:
        if (
            a.is_loopback
            or a.is_link_local
            or a.is_unspecified
            or a.is_multicast
            or a.is_reserved
            or a in METADATA
            or (isinstance(a, ipaddress.IPv4Address) and a in _THIS_NETWORK)
        ):
            return False
    return True


_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # 0.x reaches the local host on Linux


def parse_entry(text: str) -> Entry:
    """Parse one allow-list entry; ValueError names what is wrong with it."""
    raw = text.strip().lower()
    host, port_text = raw, ""
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r}: an IPv6 entry is [address] or [address]:port")
        port_text = rest[1:]
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
    any_port = port_text == "*"
    port = None
    if port_text and not any_port:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{text!r}: the port must be a number from 1 to 65535, or *")
        port = int(port_text)
    if "/" in host:
        return _network_entry(text, raw, host, port, any_port)
    if not host or any(c not in _PRINTABLE or c in "/\\@%" for c in host):
        raise ValueError(f"{text!r}: not a host name, pattern or IP address")
    try:
        ip: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if raw.startswith("[") and not isinstance(ip, ipaddress.IPv6Address):
        raise ValueError(f"{text!r}: only an IPv6 address goes in brackets")
    return Entry(raw, str(ip) if ip else host, ip, port, any_port)


def _network_entry(text: str, raw: str, host: str, port: int | None, any_port: bool) -> Entry:
    try:
        network: IPNetwork = ipaddress.ip_network(host, strict=True)
    except ValueError as exc:
        raise ValueError(f"{text!r}: not a network in CIDR form ({exc})") from None
    if raw.startswith("[") != (network.version == 6):
        raise ValueError(f"{text!r}: an IPv6 network goes in brackets, an IPv4 one does not")
    if network.prefixlen < MIN_PREFIX[network.version]:
        raise ValueError(
            f"{text!r}: a network wider than /{MIN_PREFIX[network.version]} is not allowed"
        )
    return Entry(raw, str(network), None, port, any_port, network)


@lru_cache(maxsize=8)
def parse_allow_list(entries: tuple[str, ...]) -> tuple[Entry, ...]:
    return tuple(parse_entry(e) for e in entries if e.strip())


def allow_list() -> tuple[Entry, ...]:
    from django.conf import settings  # read at call time: tests and operators change it
    from django.core.exceptions import ImproperlyConfigured

    try:
        return parse_allow_list(tuple(settings.WEBHOOK_ALLOWED_HOSTS))
    except ValueError as exc:  # not a refusal of one URL: the setting itself is wrong
        raise ImproperlyConfigured(f"{SETTING}: {exc}") from None


def _is_legacy_ipv4(host: str) -> bool:
    """A host inet_aton reads as IPv4 though it is not dotted decimal (2852039166, 0x7f.1)."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    ip: IPAddress | None
    port: int
    entries: tuple[Entry, ...]  # the allow-list entries it matched


def check_url(url: object, *, resolve: bool = False) -> Target:
    """The URL's target, if the allow-list lets us call it; ValueError says why not.

    With ``resolve``, a name is also looked up now and refused when none of its addresses may
    be reached (a name that does not resolve yet passes: the connection checks it again).
    """
    if resolve or not isinstance(url, str):
        return _check_url(url, allow_list(), resolve=resolve)
    # Every webhook call asks again (the allow-list may have changed since the route was
    # saved): the answer is kept per URL and allow-list, which is what it depends on.
    found = _checked(url, allow_list())
    if isinstance(found, str):
        raise ValueError(found)
    return found


@lru_cache(maxsize=4096)
def _checked(url: str, entries: tuple[Entry, ...]) -> Target | str:
    try:
        return _check_url(url, entries, resolve=False)
    except ValueError as exc:
        return str(exc)


def _check_url(url: object, entries_in: tuple[Entry, ...], *, resolve: bool) -> Target:
    if not isinstance(url, str) or not url:
        raise ValueError("an http(s) URL is required")
    if len(url) > 2048:
        raise ValueError("the URL is longer than 2048 characters")
    if "\\" in url:
        raise ValueError("backslashes are not allowed in the URL")
    if any(c not in _PRINTABLE for c in url):
        raise ValueError("the URL contains whitespace, control or non-ASCII characters")
    try:
        parts = urlsplit(url)
        std_port = parts.port
        ours = urllib3.util.parse_url(url)
    except (ValueError, LocationParseError) as exc:
        raise ValueError(f"the URL cannot be parsed: {exc}") from None
    scheme = parts.scheme
    if scheme not in DEFAULT_PORTS:
        raise ValueError("the URL must start with http:// or https://")
    if "@" in parts.netloc or ours.auth:
        raise ValueError("user information (user@host) is not allowed in the URL")
    if "%" in parts.netloc:
        raise ValueError("percent-encoding and zone ids are not allowed in the host")
    host = parts.hostname or ""
    u3_host = (ours.host or "").lower().strip("[]")
    if not host:
        raise ValueError("the URL has no host")
    if (ours.scheme, u3_host, ours.port) != (scheme, host, std_port):
        raise ValueError("the URL is ambiguous: parsers disagree on its host or port")
    if host.endswith("."):
        raise ValueError("the host must not end with a dot")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
        if _is_legacy_ipv4(host):
            raise ValueError("write an IPv4 host as four decimal numbers (a.b.c.d)") from None
    if isinstance(ip, ipaddress.IPv6Address) and (ip.ipv4_mapped or ip.sixtofour or ip.teredo):
        raise ValueError("IPv6 addresses that embed an IPv4 address are not allowed")
    if std_port == 0:
        raise ValueError("port 0 cannot be called")
    port = DEFAULT_PORTS[scheme] if std_port is None else std_port
    entries = tuple(e for e in entries_in if e.matches(host, ip, port, scheme))
    if not entries:
        shown = f"[{host}]" if isinstance(ip, ipaddress.IPv6Address) else host
        raise ValueError(f"{shown}:{port} is not allowed by {SETTING}")
    target = Target(scheme, host, ip, port, entries)
    if resolve and ip is None:
        try:
            addresses = resolve_host(host, port)
        except socket.gaierror:
            addresses = []
        if addresses and not any(reachable(a, entries) for a in addresses):
            raise ValueError(
                f"{host} resolves to {', '.join(map(str, addresses))}, "
                f"which {SETTING} does not let it reach"
            )
    return target


def refusal(url: object, *, resolve: bool = False) -> str | None:
    """Why the URL may not be called, or None."""
    try:
        check_url(url, resolve=resolve)
    except ValueError as exc:
        return str(exc)
    return None


def url_allowed(url: object, *, resolve: bool = False) -> bool:
    return refusal(url, resolve=resolve) is None


def resolve_host(host: str, port: int) -> list[IPAddress]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in out:
            out.append(address)
    return out


def reachable(address: IPAddress, entries: tuple[Entry, ...]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(e.may_reach(address) for e in entries)


# --- the client: connections that resolve, check, then connect to the checked address ----------


def literal_ip(host: str) -> IPAddress | None:
    """The address, when the host is written as one (IPv6 with or without brackets)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def permitted_addresses(
    scheme: str, host: str, port: int, addresses: list[IPAddress]
) -> list[IPAddress]:
    """Of the addresses `host` resolved to, those its allow-list entries let us reach, in order;
    PermissionError (naming them) when there are none. Every client connects only to these."""
    ip = literal_ip(host)
    entries = tuple(e for e in allow_list() if e.matches(host.lower(), ip, port, scheme))
    allowed = [a for a in addresses if reachable(a, entries)]
    if not allowed:
        raise PermissionError(
            f"egress refused: {host}:{port} resolves to "
            f"{', '.join(map(str, addresses))}, not allowed by {SETTING}"
        )
    return allowed


class _CheckedConnect:
    """Replaces urllib3's connect step: no socket is opened to an address the allow-list
    does not let this host reach. Connecting to the checked IP itself closes the window a
    second DNS lookup would leave open (rebinding). TLS still verifies the host name."""

    scheme = "http"
    host: str
    port: int
    timeout: object
    source_address: object
    socket_options: object

    def _new_conn(self) -> socket.socket:
        ip = literal_ip(self.host)
        try:
            addresses = [ip] if ip is not None else resolve_host(self.host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        try:
            allowed = permitted_addresses(self.scheme, self.host, self.port, addresses)
        except PermissionError as exc:
            raise EgressRefused(self, str(exc)) from None  # type: ignore[arg-type]
        error: OSError | None = None
        for address in allowed:
            try:
                sock = u3_connection.create_connection(
                    (str(address), self.port),
                    self.timeout,  # type: ignore[arg-type]
                    source_address=self.source_address,  # type: ignore[arg-type]
                    socket_options=self.socket_options,  # type: ignore[arg-type]
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                ) from exc
            except OSError as exc:
                error = exc
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        raise NewConnectionError(
            self,  # type: ignore[arg-type]
            f"Failed to establish a new connection: {error}",
        ) from error


class _HTTPConnection(_CheckedConnect, HTTPConnection):
    scheme = "http"


class _HTTPSConnection(_CheckedConnect, HTTPSConnection):
    scheme = "https"


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class PoolManager(urllib3.PoolManager):
    """urllib3's PoolManager whose connections check the resolved address (see module doc).
    Callers still check the URL itself first (``check_url``) and must not follow redirects."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
