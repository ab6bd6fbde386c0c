"""The stage network file: which rigs and operator stations are on the stage, and where (pure, no I/O
beyond reading the file).

Every rig daemon listens on the endpoint the file names; stations and the other daemons connect to it
there: no discovery.  Zenoh scouts by
multicast unless told not to; a camera robot must not find, or be found by, whatever else happens to be on
the stage's network.  So the file is the whole truth of who talks to whom, and the same file is handed to
every node (``motionctl serve --stage-net FILE --rig NAME`` and ``motionctl stage --net FILE ...``).

    stage = "demo"                           # the key space's name for this stage
    margin = 0.05                            # metres two rigs' links keep apart (motionctl check --stage-net)

    [[station]]                              # an operator station (several are allowed); it only
    name = "operator-1"                      # connects out, to every rig

    [[rig]]
    name = "arm-a"
    rig = "../ur10e_track.toml"              # relative to this file
    listen = "tcp/127.0.0.1:7448"
    move = "../../moves/push_in.toml"        # optional: loaded when the daemon starts

    [security]                               # optional: mutual TLS and access control
    ca = "certs/ca.pem"                      # the stage's certificate authority
    certs = "certs"                          # <name>.pem and <name>.key of every node
    operators = ["operator-1"]               # certificate names allowed to move a rig

With ``[security]`` every endpoint is TLS with mutual authentication, and only the named operators' queries
reach a rig's motion commands (Zenoh's access control, by certificate common name).  Without it, a daemon
answers status and stops from anyone and refuses every command that moves a rig.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from motionctl.spec.source import Table, read_toml

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")     # a key-space chunk: no '/', '*', '$', '?', '#'
ENDPOINT = re.compile(r"^(tcp|tls)/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")


@dataclass(frozen=True)
class Node:
    """One participant: a rig daemon (and the endpoint it listens on) or an operator station."""

    name: str
    endpoint: str = ""               # a rig's, as written (tcp/HOST:PORT; [security] makes it tls/)
    rig_file: Path | None = None     # a rig daemon's rig
    move: Path | None = None         # the move a rig daemon loads when it starts


@dataclass(frozen=True)
class Security:
    """Mutual TLS with the stage's own CA, and the certificate names that may command motion."""

    ca: Path
    certs: Path
    operators: tuple[str, ...]

    def cert(self, node: str) -> Path:
        return self.certs / f"{node}.pem"

    def key(self, node: str) -> Path:
        return self.certs / f"{node}.key"


@dataclass(frozen=True)
class StageNet:
    file: str
    stage: str
    stations: tuple[Node, ...]
    rigs: tuple[Node, ...]
    security: Security | None
    margin_m: float = 0.05

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self.stations + self.rigs

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes)
        raise KeyError(f'no node named "{name}" in {self.file} (it has {known})')

    def rig(self, name: str) -> Node:
        for node in self.rigs:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.rigs) or "none"
        raise KeyError(f'no rig named "{name}" in {self.file} (its rigs: {known})')

    def endpoint(self, node: Node) -> str:
        """The endpoint as Zenoh opens it: ``tls/`` under ``[security]``, else as written."""
        return ("tls/" + node.endpoint.split("/", 1)[1]) if self.security is not None else node.endpoint


def load_stage_net(path: Path | str) -> StageNet:
    doc, source = read_toml(path)
    top = Table(doc, source)
    base = Path(path).parent
    stage = _name(top, "stage")
    margin = top.number("margin", 0.05, minimum=0.0)
    seen: set[str] = set()
    endpoints: set[str] = set()

    def node(table: Table, kind: str) -> Node:
        name = _name(table, "name")
        if name in seen:
            raise table.error("name", f'two nodes are named "{name}": each rig and station needs its own name')
        seen.add(name)
        if kind == "station":
            table.finish()
            return Node(name)
        endpoint = table.string("listen", required=True)
        match = ENDPOINT.match(endpoint)
        if match is None or not 0 < int(match.group(3)) < 65536:
            raise table.error("listen", f'"{endpoint}" is not an endpoint like "tcp/127.0.0.1:7447"')
        if match.group(1) == "tls":
            raise table.error("listen", "write tcp/...: [security] makes every endpoint TLS")
        if endpoint in endpoints:
            raise table.error("listen", f"{endpoint} is already another node's")
        endpoints.add(endpoint)
        rig_file = base / table.string("rig", required=True)
        if not rig_file.is_file():
            raise table.error("rig", f'rig file "{rig_file}" not found')
        move = table.string("move")
        if move is not None and not (base / move).is_file():
            raise table.error("move", f'move file "{base / move}" not found')
        table.finish()
        return Node(name, endpoint, rig_file, base / move if move is not None else None)

    stations = tuple(node(t, "station") for t in top.tables("station"))
    rigs = tuple(node(t, "rig") for t in top.tables("rig"))
    if not rigs:
        raise top.error(None, "no [[rig]]: a stage network needs at least one rig")
    security = None
    table = top.table("security", required=False)
    if table is not None:
        ca = base / table.string("ca", required=True)
        certs = base / table.string("certs", required=True)
        operators = table.strings("operators")
        for name in operators:
            if name not in {s.name for s in stations}:
                raise table.error("operators", f'"{name}" is not a [[station]] of this file')
        table.finish()
        security = Security(ca, certs, operators)
    top.finish()
    return StageNet(source.file, stage, stations, rigs, security, margin)


def _name(table: Table, key: str) -> str:
    value = table.string(key, required=True)
    if not NAME.match(value):
        raise table.error(key, f'"{value}" is not a name: letters, digits, "-" and "_", at most 63')
    return value
