"""Send the virtual camera over UDP: one FreeD D1 message and one OpenTrackIO sample per call.

Safety rules, because this runs beside a moving rig:

* **Loopback by default.**  Sockets bind to ``127.0.0.1`` unless the caller names an interface address
  (``bind="192.168.10.5"`` or ``"0.0.0.0"``).  A destination given as a bare port goes to ``127.0.0.1``;
  any other host must be written out, and a non-loopback destination needs a non-loopback ``bind``.
* **No multicast unless asked.**  A multicast destination (e.g. OpenTrackIO's ``239.135.1.<n>``, see
  :func:`~motionctl.vcam.opentrackio.multicast_group`) is refused unless ``multicast=True``; then the
  TTL is ``multicast_ttl`` (default 1: the local segment only).  Broadcast is refused.
* **Never stops motion.**  :meth:`VcamSender.send` never raises: a value that cannot be encoded, a full
  socket buffer or an unreachable host is counted in :attr:`VcamSender.stats` (``encode_errors``,
  ``send_errors``, ``last_error``) and the call returns ``False``.  Sockets are non-blocking, so a send
  never waits on the network.

The stream must show where the camera *is*: build the pose with :func:`camera_pose_from_joints` from the
**measured** joint positions, and pass ``measured_at_ns`` (``time.monotonic_ns()`` when they were read) to
get the latency from measurement to each ``sendto()`` in the stats.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from motionctl.kinematics.fk import Kinematics
from motionctl.spec.rig import Rig
from motionctl.spec.stage import Stage
from motionctl.timecode import Timecode
from motionctl.vcam.freed import DEFAULT_FULL_SCALE, FREED_DEFAULT_PORT, encode_d1, freed_from_pose
from motionctl.vcam.opentrackio import (DEFAULT_MAX_PAYLOAD, OPENTRACKIO_PORT, build_sample, canonical_urn,
                                        encode_udp, new_source_id)

__all__ = ["Destination", "LatencyStats", "VcamSender", "VcamStats", "camera_pose_from_joints"]

#: ``(host, port)``; a bare ``int`` port means ``("127.0.0.1", port)``; a bare host string means that host
#: on the protocol's default port (FreeD 40000, OpenTrackIO 55555); ``None`` disables the protocol.
Destination = Union[tuple[str, int], int, str, None]


def camera_pose_from_joints(kin: Kinematics, q: ArrayLike) -> NDArray[np.float64]:
    """Camera pose 4x4 in the stage frame from one joint vector (SI, the rig's axis order): FK.

    Feed it the *measured* joint positions so that the stream shows the camera where it is.
    """
    joints = np.asarray(q, dtype=float)
    if joints.shape != (kin.n,):
        raise ValueError(f"expected {kin.n} joint values, got shape {joints.shape}")
    if not np.all(np.isfinite(joints)):
        raise ValueError("joint vector has a non-finite value")
    return kin.camera(joints)


@dataclass(frozen=True)
class LatencyStats:
    """Measured-at -> sendto() latency of one protocol, nanoseconds (``None`` until the first sample)."""

    count: int = 0
    last_ns: int | None = None
    max_ns: int | None = None
    mean_ns: float | None = None


@dataclass(frozen=True)
class VcamStats:
    freed_sent: int                 # D1 datagrams handed to the kernel
    otrk_samples_sent: int          # samples whose every datagram was handed to the kernel
    otrk_datagrams_sent: int
    encode_errors: int              # samples that could not be built (nothing sent for them)
    send_errors: int                # sendto() calls that failed (the datagram is dropped)
    last_error: str | None
    freed_latency: LatencyStats
    otrk_latency: LatencyStats


class _Latency:
    def __init__(self) -> None:
        self.count = 0
        self.total = 0
        self.last: int | None = None
        self.max: int | None = None

    def add(self, value: int) -> None:
        self.count += 1
        self.total += value
        self.last = value
        self.max = value if self.max is None else max(self.max, value)

    def snapshot(self) -> LatencyStats:
        mean = self.total / self.count if self.count else None
        return LatencyStats(self.count, self.last, self.max, mean)


def _resolve(value: Destination, default_port: int, what: str) -> tuple[str, int] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{what} destination must be (host, port), a port or a host, got {value!r}")
    if isinstance(value, int):
        host, port = "127.0.0.1", value
    elif isinstance(value, str):
        host, port = value, default_port
    else:
        try:
            host, port = value
        except (TypeError, ValueError):
            raise ValueError(f"{what} destination must be (host, port), got {value!r}") from None
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"{what} port must be 1..65535, got {port!r}")
    try:
        address = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
    except (socket.gaierror, UnicodeError, TypeError) as exc:
        raise ValueError(f"{what} host {host!r} does not resolve to an IPv4 address: {exc}") from None
    return address, port


class VcamSender:
    """FreeD and/or OpenTrackIO over UDP for one camera.  Use as a context manager or call :meth:`close`.

    ``freed`` / ``otrk`` are :data:`Destination` values (``None`` turns that protocol off).  ``source_id``
    (``urn:uuid:...``) is generated once per sender when not given.  ``full_scale`` is the FreeD encoder
    count for a lens encoder of 1.0.  Not thread-safe: call :meth:`send` from one thread.
    """

    def __init__(self, freed: Destination = None, otrk: Destination = None, *, bind: str = "127.0.0.1",
                 camera_id: int = 1, source_number: int = 1, source_id: str | None = None,
                 encoding: str = "json", max_payload: int = DEFAULT_MAX_PAYLOAD,
                 full_scale: int = DEFAULT_FULL_SCALE, iris_in_spare: bool = False,
                 multicast: bool = False, multicast_ttl: int = 1,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        if isinstance(camera_id, bool) or not isinstance(camera_id, int) or not 0 <= camera_id <= 0xFF:
            raise ValueError(f"FreeD camera id must be an integer 0..255, got {camera_id!r}")
        if (isinstance(source_number, bool) or not isinstance(source_number, int)
                or not 0 <= source_number <= 0xFFFFFFFF):
            raise ValueError(f"OpenTrackIO source number must be an integer 0..4294967295, "
                             f"got {source_number!r}")
        encode_udp({}, 0, encoding, max_payload=max_payload)       # refuses a bad encoding / segment size
        if isinstance(full_scale, bool) or not isinstance(full_scale, int) or not 1 <= full_scale <= 0xFFFFFF:
            raise ValueError(f"FreeD encoder full scale must be an integer 1..16777215, got {full_scale!r}")
        self.camera_id = camera_id
        self.source_number = source_number
        self.source_id = canonical_urn("sourceId", source_id) if source_id is not None else new_source_id()
        self.encoding = encoding
        self.max_payload = max_payload
        self.full_scale = full_scale
        self.iris_in_spare = iris_in_spare
        self._clock = clock
        try:
            bind_ip = ipaddress.IPv4Address(bind)
        except ValueError:
            raise ValueError(f"bind must be an IPv4 interface address such as 127.0.0.1, "
                             f"got {bind!r}") from None
        self.freed_destination = _resolve(freed, FREED_DEFAULT_PORT, "FreeD")
        self.otrk_destination = _resolve(otrk, OPENTRACKIO_PORT, "OpenTrackIO")
        for what, dest in (("FreeD", self.freed_destination), ("OpenTrackIO", self.otrk_destination)):
            if dest is None:
                continue
            ip = ipaddress.IPv4Address(dest[0])
            if ip == ipaddress.IPv4Address("255.255.255.255") or ip.is_unspecified:
                raise ValueError(f"{what} destination {dest[0]} is not a host: broadcast is not supported")
            if ip.is_multicast and not multicast:
                raise ValueError(f"{what} destination {dest[0]} is a multicast group: pass multicast=True "
                                 "to send there")
            if bind_ip.is_loopback and not ip.is_loopback and not ip.is_multicast:
                raise ValueError(f"{what} destination {dest[0]} is not on loopback but the sender binds to "
                                 f"{bind}: pass bind= the address of the interface to send from")
        self._sockets: dict[str, socket.socket] = {}
        try:
            for key, dest in (("freed", self.freed_destination), ("otrk", self.otrk_destination)):
                if dest is None:
                    continue
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self._sockets[key] = sock
                if ipaddress.IPv4Address(dest[0]).is_multicast:
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, int(multicast_ttl))
                    if not bind_ip.is_unspecified:
                        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(bind))
                sock.bind((bind, 0))
                sock.setblocking(False)
        except OSError:
            self.close()
            raise
        self._freed_sent = 0
        self._otrk_samples = 0
        self._otrk_datagrams = 0
        self._encode_errors = 0
        self._send_errors = 0
        self._last_error: str | None = None
        self._freed_latency = _Latency()
        self._otrk_latency = _Latency()

    # -- life cycle ---------------------------------------------------------------------------------------

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()

    def __enter__(self) -> VcamSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def local_addresses(self) -> dict[str, tuple[str, int]]:
        """Where each open socket is bound: ``{"freed": (ip, port), "otrk": (ip, port)}``."""
        return {key: sock.getsockname() for key, sock in self._sockets.items()}

    @property
    def stats(self) -> VcamStats:
        return VcamStats(self._freed_sent, self._otrk_samples, self._otrk_datagrams, self._encode_errors,
                         self._send_errors, self._last_error, self._freed_latency.snapshot(),
                         self._otrk_latency.snapshot())

    # -- sending -------------------------------------------------------------------------------------------

    def _sendto(self, key: str, data: bytes, dest: tuple[str, int], measured_at_ns: int | None,
                latency: _Latency | None) -> bool:
        sock = self._sockets.get(key)
        if sock is None:
            self._send_errors += 1
            self._last_error = f"{key}: sender is closed"
            return False
        try:
            if measured_at_ns is not None and latency is not None:
                latency.add(self._clock() - measured_at_ns)
            sock.sendto(data, dest)
            return True
        except Exception as exc:          # OSError (buffer full, unreachable, ...) or anything odd
            self._send_errors += 1
            self._last_error = f"{key} send to {dest[0]}:{dest[1]}: {exc}"
            return False

    def send(self, pose: ArrayLike, lens: Mapping[str, float] | None, timecode: Timecode, sequence: int,
             rig: Rig | None, stage: Stage, timestamp_ns: int | None = None, *,
             measured_at_ns: int | None = None, recording: bool = False, slate: str | None = None,
             status: str = "OK") -> bool:
        """Send one D1 message and one OpenTrackIO sample of a stage-frame camera pose; never raises.

        ``lens`` is ``{"focus": m, "iris": f-stop, "zoom": mm}``.  ``timestamp_ns`` is the capture time
        (PTP/Unix epoch ns) for OpenTrackIO's ``sampleTimestamp``; ``time.time_ns()`` when not given.
        Returns ``True`` when everything was handed to the kernel, ``False`` if anything was counted as
        an error (see :attr:`stats`).
        """
        ok = True
        if self.freed_destination is not None:
            try:
                message = encode_d1(freed_from_pose(pose, lens, rig, stage, self.camera_id,
                                                    full_scale=self.full_scale,
                                                    iris_in_spare=self.iris_in_spare))
            except Exception as exc:
                self._encode_errors += 1
                self._last_error = f"FreeD: {exc}"
                ok = False
            else:
                if self._sendto("freed", message, self.freed_destination, measured_at_ns,
                                self._freed_latency):
                    self._freed_sent += 1
                else:
                    ok = False
        if self.otrk_destination is not None:
            try:
                sample = build_sample(
                    pose, lens, rig, stage, timecode=timecode, sequence=sequence, source_id=self.source_id,
                    source_number=self.source_number,
                    timestamp_ns=time.time_ns() if timestamp_ns is None else timestamp_ns,
                    status=status, recording=recording, slate=slate)
                datagrams = encode_udp(sample, sequence, self.encoding, max_payload=self.max_payload)
            except Exception as exc:
                self._encode_errors += 1
                self._last_error = f"OpenTrackIO: {exc}"
                ok = False
            else:
                complete = True
                for index, datagram in enumerate(datagrams):
                    sent = self._sendto("otrk", datagram, self.otrk_destination,
                                        measured_at_ns if index == 0 else None, self._otrk_latency)
                    if sent:
                        self._otrk_datagrams += 1
                    complete = complete and sent
                if complete:
                    self._otrk_samples += 1
                ok = ok and complete
        return ok
