"""The stage network file the stage tests use: two stations (one an operator), two rigs on 127.0.0.1."""

from __future__ import annotations

from tests.conftest import RIGS


def net_text(ports: tuple[int, int] = (17448, 17449), *, stage: str = "demo", certs: str | None = "certs") -> str:
    text = f'''stage = "{stage}"

[[station]]
name = "operator-1"

[[station]]
name = "viewer-1"

[[rig]]
name = "arm-a"
rig = "{RIGS / "ur10e_track.toml"}"
listen = "tcp/127.0.0.1:{ports[0]}"

[[rig]]
name = "crane"
rig = "{RIGS / "moco_crane.toml"}"
listen = "tcp/127.0.0.1:{ports[1]}"
'''
    if certs is not None:
        text += f'\n[security]\nca = "{certs}/ca.pem"\ncerts = "{certs}"\noperators = ["operator-1"]\n'
    return text
