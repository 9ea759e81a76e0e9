"""nmap XML scan results as a discovery source: hosts, open services and OS guesses.

Follows nmap's XML output format (``nmap -oX``), described by the DTD ``nmap.dtd`` shipped
with nmap and in the nmap reference guide ("XML Output (-oX)"): ``<nmaprun>`` with one
``<host>`` per scanned address, holding ``<status state>``, ``<address addr addrtype
vendor>``, ``<hostnames><hostname name type>``, ``<ports><port protocol portid><state state>
<service name product version extrainfo>`` and ``<os>`` with ``<osmatch name accuracy>``
(nmap 5.2+; each with ``<osclass type vendor osfamily osgen accuracy>``) or bare
``<osclass>`` elements (older output).

Mapping
-------
Every host whose status is ``up`` -> one :class:`~cmdb_graph.model.records.CIRecord`:

* CI class from the OS classes with the best accuracy: ``general purpose`` -> ``Server``;
  switch, router, WAP, firewall, broadband router, load balancer, bridge, hub, proxy server,
  terminal server, VoIP gateway, security-misc -> ``NetworkDevice``; printer, print server ->
  ``Printer``; storage-misc -> ``StorageDevice``; phone, PDA -> ``MobileDevice``; webcam,
  media device, power-device, specialized and other embedded types -> ``Hardware``. When the
  best guesses disagree (nmap often ties a Linux host with an embedded device) or there is
  no OS guess, the class is ``Server``, the default of this discovery source.
* identifiers: ``native_key`` ``mac:<mac>`` when nmap saw the MAC (same segment), else
  ``ip:<address>`` (nmap has no host id of its own; the scanned address is all it has, so a
  re-addressed host is matched again by the hostname and MAC rules); ``mac_addresses``;
  ``hostname`` (and ``fqdn``/``domain`` when dotted) from the ``user`` hostname, else the
  first ``PTR`` one (``localhost`` names are never identifiers).
* attributes: ``ip_addresses``; ``mac_vendor``; ``os_name`` and ``os_accuracy`` of the best
  guess (an ``osmatch`` name, else vendor + family + generation of the best ``osclass``);
  ``os_family``; ``open_ports``, a list of ``"<port>/<protocol> <service> <product>
  <version>"`` strings (e.g. ``"22/tcp ssh OpenSSH 5.3"``); ``scanned_at`` (UTC, ISO 8601).
* when nmap saw the host: the host's ``endtime`` (else ``starttime``, else the run's
  ``runstats/finished time``, else ``nmaprun start``), epoch seconds, is the record's
  ``observed_at`` (and ``scanned_at``): the CI's ``first_seen``/``last_seen`` and the source's
  lineage get the scan's time, not the import's, so an old scan makes stale CIs. The service
  CIs of the host get the same time.

For open services whose product is a well-known server product (databases such as MySQL,
PostgreSQL, Oracle, MongoDB, Redis; web, application, mail and messaging servers such as
Apache httpd, nginx, IIS, Tomcat, Postfix, RabbitMQ), one CIRecord of class ``Database`` or
``Middleware`` per product and host, named after the product and identified with its host
(the ``name_host`` rule: ``name`` + ``host``; its native key is ``<host key>/<product>``), with
its version and ports as attributes, and a ``RUNS_ON`` relationship to the host. Other
services (ssh, rpcbind, CUPS, unidentified ones) stay in ``open_ports`` only: they are part of
the host, not configuration items of their own.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.entities import RelationshipBasis, Scalar
from cmdb_graph.model.records import CIRecord, Identifiers, Origin, Record, RelationshipRecord
from importers.base import XMLImporter, guard, observed_at

__all__ = ["NmapImporter", "SERVER_PRODUCTS"]

_OS_TYPES = {
    "general purpose": "Server",
    "switch": "NetworkDevice",
    "router": "NetworkDevice",
    "wap": "NetworkDevice",
    "firewall": "NetworkDevice",
    "broadband router": "NetworkDevice",
    "load balancer": "NetworkDevice",
    "bridge": "NetworkDevice",
    "hub": "NetworkDevice",
    "proxy server": "NetworkDevice",
    "terminal server": "NetworkDevice",
    "voip gateway": "NetworkDevice",
    "security-misc": "NetworkDevice",
    "printer": "Printer",
    "print server": "Printer",
    "storage-misc": "StorageDevice",
    "phone": "MobileDevice",
    "pda": "MobileDevice",
}
_DEFAULT_CLASS = "Server"

#: product name prefix (lower case) -> CI class of the service's own CI
SERVER_PRODUCTS: dict[str, str] = {
    "mysql": "Database",
    "mariadb": "Database",
    "postgresql": "Database",
    "microsoft sql server": "Database",
    "oracle tns listener": "Database",
    "oracle database": "Database",
    "mongodb": "Database",
    "redis": "Database",
    "apache cassandra": "Database",
    "couchdb": "Database",
    "elasticsearch": "Database",
    "influxdb": "Database",
    "ibm db2": "Database",
    "neo4j": "Database",
    "apache httpd": "Middleware",
    "nginx": "Middleware",
    "microsoft iis httpd": "Middleware",
    "lighttpd": "Middleware",
    "apache tomcat": "Middleware",
    "apache jserv": "Middleware",
    "jetty": "Middleware",
    "jboss": "Middleware",
    "wildfly": "Middleware",
    "oracle weblogic": "Middleware",
    "ibm websphere": "Middleware",
    "haproxy": "Middleware",
    "squid http proxy": "Middleware",
    "varnish": "Middleware",
    "rabbitmq": "Middleware",
    "apache activemq": "Middleware",
    "memcached": "Middleware",
    "postfix smtpd": "Middleware",
    "exim smtpd": "Middleware",
    "sendmail": "Middleware",
    "microsoft exchange smtpd": "Middleware",
    "dovecot": "Middleware",
    "openldap": "Middleware",
    "isc bind": "Middleware",
}
_LOCALHOST = {"localhost", "localhost.localdomain", "localhost6", "ip6-localhost"}


def _mac(value: str) -> str | None:
    text = value.strip().lower().replace("-", ":")
    if re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", text) and text != "00:00:00:00:00:00":
        return text
    return None


def _attr(elem: Element | None, name: str) -> str | None:
    if elem is None:
        return None
    value = elem.get(name)
    return value.strip() if value and value.strip() else None


def _accuracy(elem: Element) -> int:
    try:
        return int(elem.get("accuracy") or 0)
    except ValueError:
        return 0


def _os_guess(host: Element) -> tuple[str | None, int | None, str | None, str]:
    """``(os_name, accuracy, os_family, ci_class)`` from the host's ``<os>`` element."""
    os_elem = host.find("os")
    if os_elem is None:
        return None, None, None, _DEFAULT_CLASS
    matches = os_elem.findall("osmatch")
    classes = [c for m in matches for c in m.findall("osclass")] + os_elem.findall("osclass")
    best_name: str | None = None
    best_accuracy: int | None = None
    if matches:
        top = max(matches, key=_accuracy)  # max keeps the first of equal accuracies
        best_name, best_accuracy = _attr(top, "name"), _accuracy(top)
        classes = top.findall("osclass") or classes
    if not classes:
        return best_name, best_accuracy, None, _DEFAULT_CLASS
    top_accuracy = max(_accuracy(c) for c in classes)
    best = [c for c in classes if _accuracy(c) == top_accuracy]
    mapped = {_OS_TYPES.get((_attr(c, "type") or "").lower(), "Hardware") for c in best}
    ci_class = mapped.pop() if len(mapped) == 1 else _DEFAULT_CLASS
    chosen = next(
        (c for c in best
         if _OS_TYPES.get((_attr(c, "type") or "").lower(), "Hardware") == ci_class),
        best[0],
    )
    if best_name is None:
        parts: list[str] = []
        for part in (_attr(chosen, "vendor"), _attr(chosen, "osfamily"), _attr(chosen, "osgen")):
            if part and part not in parts:
                parts.append(part)
        best_name = " ".join(parts) or None
        best_accuracy = top_accuracy
    return best_name, best_accuracy, _attr(chosen, "osfamily"), ci_class


def _server_product(product: str | None) -> str | None:
    if not product:
        return None
    low = product.lower()
    for prefix, ci_class in SERVER_PRODUCTS.items():
        if low.startswith(prefix):
            return ci_class
    return None


class NmapImporter(XMLImporter):
    """Import one nmap XML scan (``nmap -oX``); see the module docstring for the mapping.

    Raises
    ------
    InvalidRecordError
        From :meth:`parse`: unreadable or malformed XML, a root other than ``<nmaprun>``, or a
        host without an IP ``<address>`` (the record is ``host[<n>]``).
    """

    kind = "nmap"
    description = "nmap XML scan output (-oX, nmap.dtd): hosts, open services, OS guesses"
    relationship_basis = RelationshipBasis.DISCOVERED

    def transform(self, doc: Element, origin: str) -> list[Record]:
        """Host CIs, service CIs and their ``RUNS_ON`` relationships of one scan."""
        if doc.tag != "nmaprun":
            raise InvalidRecordError(
                f"expected an <nmaprun> root element, found <{doc.tag}>", file=origin,
                field="nmaprun",
            )
        records: list[Record] = []
        finished = doc.find("runstats/finished")
        run_time = _attr(finished, "time") or _attr(doc, "start")
        for index, host in enumerate(doc.iter("host"), start=1):
            if _attr(host.find("status"), "state") not in (None, "up"):
                continue
            where = Origin(file=origin, record=f"host[{index}]")
            with guard(origin, record=where.record):
                records.extend(_host(host, where, run_time))
        return records


def _host(host: Element, origin: Origin, run_time: str | None = None) -> list[Record]:
    """The CI of one host that is up, and the CIs of the server products it runs."""
    ips, mac, mac_vendor = _addresses(host)
    if not ips:
        raise InvalidRecordError(
            "host has no IP address element", file=origin.file, record=origin.record,
            field="address",
        )
    names = [
        (_attr(h, "type") or "", name)
        for h in host.findall("hostnames/hostname")
        if (name := _attr(h, "name")) is not None
    ]
    names.sort(key=lambda item: 0 if item[0] == "user" else 1)  # stable: user, then PTR
    display = names[0][1] if names else ips[0]
    real = [n for _, n in names if n.lower() not in _LOCALHOST]
    hostname = fqdn = domain = None
    if real:
        first = real[0].lower().rstrip(".")
        hostname, _, domain_part = first.partition(".")
        if domain_part:
            fqdn, domain = first, domain_part
    native_key = f"mac:{mac}" if mac else f"ip:{ips[0]}"
    ids = Identifiers(native_key=native_key, hostname=hostname, fqdn=fqdn, domain=domain,
                      mac_addresses=(mac,) if mac else ())
    os_name, accuracy, os_family, ci_class = _os_guess(host)
    open_ports, services = _ports(host)
    attrs: dict[str, Scalar | list[str]] = {"ip_addresses": ips, "open_ports": open_ports}
    for key, value in (("mac_vendor", mac_vendor), ("os_name", os_name),
                       ("os_accuracy", accuracy), ("os_family", os_family)):
        if value is not None:
            attrs[key] = value
    scanned = _attr(host, "endtime") or _attr(host, "starttime") or run_time
    if scanned is not None:
        when = observed_at(scanned)
        if when is None:
            attrs["scan_time_raw"] = scanned
        else:
            attrs["scanned_at"] = attrs["observed_at"] = when
    records: list[Record] = [
        CIRecord(ci_class=ci_class, name=display, identifiers=ids, attributes=attrs,
                 origin=origin)
    ]
    for product, (app_class, version, ports) in services.items():
        app_attrs: dict[str, Scalar | list[str]] = {"ports": ports}
        if "observed_at" in attrs:
            app_attrs["observed_at"] = attrs["observed_at"]
        if version is not None:
            app_attrs["version"] = version
        app_ids = Identifiers(native_key=f"{native_key}/{product.lower()}", name=product,
                              ci_class=app_class, host=ids)
        records.append(CIRecord(ci_class=app_class, name=product, identifiers=app_ids,
                                attributes=app_attrs, origin=origin))
        records.append(RelationshipRecord(
            rel_type="RUNS_ON", source=app_ids, target=ids,
            evidence=f"nmap service on {', '.join(ports)}", origin=origin,
        ))
    return records


def _addresses(host: Element) -> tuple[list[str], str | None, str | None]:
    """The IP addresses of a host, its MAC and the MAC's vendor."""
    ips: list[str] = []
    mac: str | None = None
    mac_vendor: str | None = None
    for address in host.findall("address"):
        kind = (_attr(address, "addrtype") or "ipv4").lower()
        addr = _attr(address, "addr")
        if addr is None:
            continue
        if kind == "mac":
            mac = _mac(addr)
            mac_vendor = _attr(address, "vendor")
        elif addr not in ips:
            ips.append(addr)
    return ips, mac, mac_vendor


def _ports(host: Element) -> tuple[list[str], dict[str, tuple[str, str | None, list[str]]]]:
    """The open ports as text, and the server products (class, version, ports) among them."""
    open_ports: list[str] = []
    services: dict[str, tuple[str, str | None, list[str]]] = {}
    for port in host.findall("ports/port"):
        if _attr(port.find("state"), "state") != "open":
            continue
        portid, proto = _attr(port, "portid"), _attr(port, "protocol") or "tcp"
        service = port.find("service")
        name = _attr(service, "name")
        product = _attr(service, "product")
        version = _attr(service, "version")
        open_ports.append(" ".join(p for p in (f"{portid}/{proto}", name, product, version)
                                   if p))
        app_class = _server_product(product)
        if app_class is not None and product is not None:
            entry = services.setdefault(product, (app_class, version, []))
            entry[2].append(f"{portid}/{proto}")
    return open_ports, services
