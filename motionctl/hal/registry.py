"""Transport URL -> driver backend, imported only when used (like python-can's interface registry).

``serial:///dev/ttyUSB0?baud=1000000``  -> motionctl.hal.serial.driver.SerialDriver
``can://virtual/<channel>``, ``can://socketcan/can0`` -> motionctl.hal.canopen.driver.CanDriver
``rsi://BIND:PORT`` (KUKA RSI; the address motionctl listens on) -> motionctl.hal.rsi.driver.RsiDriver
``rtde://HOST`` (Universal Robots e-Series: RTDE and a control program) -> motionctl.hal.rtde.driver.RtdeDriver
``group://NAME,...`` (a rig on several controllers: its ``[[hardware.group]]``) -> motionctl.hal.composite
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from motionctl.errors import InputError
from motionctl.hal.driver import Driver
from motionctl.spec.rig import Rig

BACKENDS: dict[str, str] = {
    "serial": "motionctl.hal.serial.driver:SerialDriver",
    "can": "motionctl.hal.canopen.driver:CanDriver",
    "rsi": "motionctl.hal.rsi.driver:RsiDriver",
    "rtde": "motionctl.hal.rtde.driver:RtdeDriver",
    "group": "motionctl.hal.composite:CompositeDriver",
}
#: KUKA's RSI examples and the ROS-Industrial driver listen on this port.
RSI_DEFAULT_PORT = 49152


@dataclass(frozen=True)
class TransportUrl:
    scheme: str
    host: str          # serial: empty; can: the python-can interface (virtual, socketcan, ...); rsi: bind address;
    #                    rtde: the robot
    path: str          # serial: device path; can: channel; rsi: the UDP port
    options: dict[str, str]

    @classmethod
    def parse(cls, url: str) -> TransportUrl:
        parts = urlsplit(url)
        if parts.scheme not in BACKENDS:
            known = ", ".join(f"{s}://" for s in BACKENDS)
            raise InputError(f'unknown transport "{url}": expected one of {known}')
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.scheme == "serial":
            if not parts.path:
                raise InputError(f'"{url}" names no serial device (e.g. serial:///dev/ttyUSB0?baud=1000000)')
            return cls("serial", "", parts.path, options)
        if parts.scheme == "rsi":
            try:
                port = parts.port or RSI_DEFAULT_PORT
            except ValueError:
                raise InputError(f'"{url}": the port must be a number 1..65535 (e.g. rsi://127.0.0.1:49152)') from None
            # Loopback unless the operator names an address (a real controller needs the stage-side one).
            return cls("rsi", parts.hostname or "127.0.0.1", str(port), options)
        if parts.scheme == "group":
            return cls("group", parts.netloc, "", options)
        if parts.scheme == "rtde":
            if not parts.hostname:
                raise InputError(f'"{url}" names no robot (e.g. rtde://192.168.1.20)')
            return cls("rtde", parts.hostname, "", options)
        channel = parts.path.lstrip("/")
        if not parts.netloc or not channel:
            raise InputError(f'"{url}" needs an interface and a channel (e.g. can://socketcan/can0)')
        return cls(parts.scheme, parts.netloc, channel, options)


def open_driver(rig: Rig, url: str | None = None, **options: object) -> Driver:
    """A driver for ``url`` (default: the rig's ``[hardware] transport``), not yet opened."""
    if url is None:
        if rig.hardware is None:
            raise InputError(f'rig "{rig.name}" has no [hardware] transport; give one with --hw URL')
        url = rig.hardware.transport
    parsed = TransportUrl.parse(url)
    module_name, class_name = BACKENDS[parsed.scheme].split(":")
    backend = getattr(importlib.import_module(module_name), class_name)
    return backend(rig, url, **options)
