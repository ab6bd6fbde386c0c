"""OpenTrackIO samples (SMPTE RIS-OSVP) and their UDP transport: build, segment, reassemble, verify.

A *sample* is one JSON object per frame, valid against the official schema
(``shared/reference/opentrackio/schema.json``, JSON Schema 2020-12, protocol version 0.9.3):

* ``protocol``: ``{"name": "OpenTrackIO", "version": [0, 9, 3]}``
* ``sampleId``: a fresh ``urn:uuid:`` (uuid4) per sample
* ``sourceId``: ``urn:uuid:`` of the sender, stable for its lifetime (:func:`new_source_id`)
* ``sourceNumber``: the stream index (default 1)
* ``timing.mode``: ``"internal"`` (the sample carries its own ``sampleTimestamp``) or ``"external"``
* ``timing.sampleRate``: the frame rate ``{num, denom}`` (e.g. 24000/1001)
* ``timing.sequenceNumber``: the caller's sequence, modulo 2**32
* ``timing.timecode``: ``{hours, minutes, seconds, frames, frameRate {num, denom}, dropFrame}``
* ``timing.sampleTimestamp``: ``{seconds, nanoseconds}`` of the capture instant (required when internal)
* ``transforms``: one ``{"id": "Camera", translation {x, y, z} m, rotation {pan, tilt, roll} deg}``
* ``lens``: ``encoders {focus, iris, zoom}`` 0..1, ``fStop``, ``pinholeFocalLength`` mm, ``focusDistance`` m
  (only the channels given)
* ``tracker``: ``{status, recording, slate?, notes?}``

Camera transform: the stage-frame pose goes through ``stage.engine_from_stage`` (metres), and the rotation
is written as OpenTrackIO's intrinsic Z-X-Y pan/tilt/roll in degrees, the stage frame's own convention
(pan counter-clockwise seen from above, tilt up, roll turning the up vector to camera-right).  OpenTrackIO's
"stage origin" is therefore the engine world's origin.

Lens encoders follow the directions the schema asks for: zoom 0 = wide .. 1 = tele and iris 0 = open ..
1 = closed are the rig calibration as is; **focus is 1 - calibration**, because the schema wants
0 = infinity .. 1 = closest while rig calibrations grow with distance.  ``pinholeFocalLength`` is the
nominal focal length (no lens model is applied) and ``focusDistance`` the focus value in metres.

UDP transport (``PROTOCOLS.md`` section 3, camdkit reference sender, Unreal LiveLinkOpenTrackIO): each
datagram is a 16-byte big-endian header then a payload segment::

    0  4  identifier "OTrk"
    4  1  reserved (0)
    5  1  encoding: 0x01 JSON, 0x02 CBOR
    6  2  sequence number (u16; the same in every segment of one sample)
    8  4  segment offset (byte offset of this segment in the whole payload)
    12 2  bit 15: last segment; bits 0-14: segment payload length
    14 2  Fletcher-16 over bytes 0..13 and the segment payload, sums modulo 256 (``s2 << 8 | s1``)

The modulo-256 sums are what ``PROTOCOLS.md`` and Unreal (console variable ``OpenTrackIO.ChecksumModulo``,
default 256) use; the textbook Fletcher-16 (and some camdkit reference scripts) use 255, which
``checksum_modulo=255`` reproduces.  JSON payloads are compact UTF-8; CBOR needs the optional ``cbor2``.
"""

from __future__ import annotations

import json
import math
import struct
import uuid
from dataclasses import dataclass
from typing import Iterable, Literal, Mapping

import numpy as np
from numpy.typing import ArrayLike

from motionctl.errors import ProtocolError
from motionctl.spec.rig import Rig
from motionctl.spec.stage import Stage
from motionctl.timecode import Timecode
from motionctl.vcam.frames import check_lens, engine_pose, lens_encoder, pose_ptr_deg

__all__ = [
    "DEFAULT_MAX_PAYLOAD", "ENCODING_CBOR", "ENCODING_JSON", "HEADER_LENGTH", "OPENTRACKIO_PORT",
    "PROTOCOL_NAME", "PROTOCOL_VERSION", "Segment", "build_sample", "canonical_urn", "decode_udp",
    "encode_udp", "fletcher16", "multicast_group", "new_source_id", "parse_datagram",
]

OPENTRACKIO_PORT = 55555
PROTOCOL_NAME = "OpenTrackIO"
PROTOCOL_VERSION = (0, 9, 3)          # the version of the schema and examples in shared/reference
HEADER_LENGTH = 16
IDENTIFIER = b"OTrk"
ENCODING_JSON = 0x01
ENCODING_CBOR = 0x02
DEFAULT_MAX_PAYLOAD = 1400            # segment payload bytes: 1416-byte datagrams fit a 1500-byte MTU
LAST_SEGMENT_FLAG = 0x8000
MAX_SEGMENT_PAYLOAD = 0x7FFF          # 15 bits of length
_HEADER = struct.Struct(">4sBBHIH")   # the 14 bytes before the checksum
_ENCODINGS = {"json": ENCODING_JSON, "cbor": ENCODING_CBOR}
_URN = "urn:uuid:"

Mode = Literal["internal", "external"]


def new_source_id() -> str:
    """A fresh ``urn:uuid:`` for a sender; keep it for the sender's lifetime."""
    return _URN + str(uuid.uuid4())


def multicast_group(source_number: int) -> str:
    """The conventional multicast group ``239.135.1.<sourceNumber>`` (use only when explicitly asked)."""
    if isinstance(source_number, bool) or not isinstance(source_number, int) or not 1 <= source_number <= 200:
        raise ValueError(f"OpenTrackIO multicast source number must be 1..200, got {source_number!r}")
    return f"239.135.1.{source_number}"


def _number(name: str, value: float) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"OpenTrackIO {name} must be finite, got {value!r}")
    return number


def _non_blank(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 1023:
        raise ValueError(f"OpenTrackIO tracker {name} must be non-blank text of at most 1023 characters")
    return value


def canonical_urn(name: str, value: str) -> str:
    """``value`` as a canonical lower-case ``urn:uuid:``; ValueError if it is not one."""
    if not isinstance(value, str) or not value.startswith(_URN):
        raise ValueError(f"OpenTrackIO {name} must be a urn:uuid:..., got {value!r}")
    try:
        parsed = uuid.UUID(value[len(_URN):])
    except ValueError as exc:
        raise ValueError(f"OpenTrackIO {name} {value!r} is not a UUID URN") from exc
    return _URN + str(parsed)          # canonical lower-case form, as the schema's pattern requires


def _lens_block(lens: Mapping[str, float] | None, rig: Rig | None) -> dict | None:
    values = check_lens(lens)
    if not values:
        return None
    block: dict = {}
    encoders: dict[str, float] = {}
    for name in ("focus", "iris", "zoom"):
        if name not in values:
            continue
        encoder = lens_encoder(rig, name, values[name])
        if encoder is not None:
            encoders[name] = 1.0 - encoder if name == "focus" else encoder
    if encoders:
        block["encoders"] = encoders
    if "iris" in values:
        block["fStop"] = values["iris"]
    if "zoom" in values:
        block["pinholeFocalLength"] = values["zoom"]
    if "focus" in values:
        block["focusDistance"] = values["focus"]
    return block


def build_sample(pose: ArrayLike, lens: Mapping[str, float] | None, rig: Rig | None, stage: Stage, *,
                 timecode: Timecode, sequence: int, source_id: str, source_number: int = 1,
                 timestamp_ns: int | None = None, mode: Mode = "internal", status: str = "OK",
                 recording: bool = False, slate: str | None = None, notes: str | None = None,
                 sample_id: str | None = None, transform_id: str = "Camera") -> dict:
    """One OpenTrackIO sample (a JSON-serialisable dict) for a stage-frame camera pose.

    ``lens`` is ``{"focus": m, "iris": f-stop, "zoom": mm}`` (any subset; ``rig`` supplies the encoder
    calibration).  ``timestamp_ns`` is the capture instant in nanoseconds since the PTP/Unix epoch; it is
    required when ``mode == "internal"``.  The sample rate is the timecode's frame rate.
    """
    if mode not in ("internal", "external"):
        raise ValueError(f'OpenTrackIO timing mode must be "internal" or "external", got {mode!r}')
    if not isinstance(timecode, Timecode):
        raise ValueError(f"timecode must be a motionctl Timecode, got {timecode!r}")
    if isinstance(sequence, bool) or not isinstance(sequence, (int, np.integer)) or sequence < 0:
        raise ValueError(f"sequence must be a non-negative integer, got {sequence!r}")
    if (isinstance(source_number, bool) or not isinstance(source_number, (int, np.integer))
            or not 0 <= source_number <= 0xFFFFFFFF):
        raise ValueError(f"sourceNumber must be an integer 0..4294967295, got {source_number!r}")
    if not isinstance(recording, bool):
        raise ValueError(f"recording must be True or False, got {recording!r}")
    world = engine_pose(pose, stage)
    pan, tilt, roll = pose_ptr_deg(world)
    rate = timecode.rate
    hours, minutes, seconds, frames = timecode.fields
    timing: dict = {
        "mode": mode,
        "sampleRate": {"num": rate.num, "denom": rate.den},
        "sequenceNumber": int(sequence) % (1 << 32),
        "timecode": {"hours": hours, "minutes": minutes, "seconds": seconds, "frames": frames,
                     "frameRate": {"num": rate.num, "denom": rate.den}, "dropFrame": rate.drop_frame},
    }
    if timestamp_ns is not None:
        if (isinstance(timestamp_ns, bool) or not isinstance(timestamp_ns, (int, np.integer))
                or timestamp_ns < 0):
            raise ValueError(f"timestamp_ns must be a non-negative integer, got {timestamp_ns!r}")
        secs, nanos = divmod(int(timestamp_ns), 1_000_000_000)
        timing["sampleTimestamp"] = {"seconds": secs, "nanoseconds": nanos}
    elif mode == "internal":
        raise ValueError('OpenTrackIO "internal" timing needs a sampleTimestamp: pass timestamp_ns')
    tracker: dict = {"status": _non_blank("status", status), "recording": recording}
    if slate is not None:
        tracker["slate"] = _non_blank("slate", slate)
    if notes is not None:
        tracker["notes"] = _non_blank("notes", notes)
    x, y, z = (_number("translation", v) for v in world[:3, 3])
    sample: dict = {
        "protocol": {"name": PROTOCOL_NAME, "version": list(PROTOCOL_VERSION)},
        "sampleId": _URN + str(uuid.uuid4()) if sample_id is None else canonical_urn("sampleId", sample_id),
        "sourceId": canonical_urn("sourceId", source_id),
        "sourceNumber": int(source_number),
        "timing": timing,
        "transforms": [{"id": _non_blank("transform id", transform_id),
                        "translation": {"x": x, "y": y, "z": z},
                        "rotation": {"pan": pan, "tilt": tilt, "roll": roll}}],
        "tracker": tracker,
    }
    lens_block = _lens_block(lens, rig)
    if lens_block is not None:
        sample["lens"] = lens_block
    return sample


# ---------------------------------------------------------------------------------------------------------
# UDP transport


def fletcher16(data: bytes, modulo: int = 256) -> int:
    """OpenTrackIO's Fletcher-16: ``s1 += b; s2 += s1`` modulo ``modulo`` (256), result ``s2 << 8 | s1``."""
    s1 = s2 = 0
    for byte in data:
        s1 = (s1 + byte) % modulo
        s2 = (s2 + s1) % modulo
    return (s2 << 8) | s1


def _payload(sample: Mapping, encoding: str) -> bytes:
    if encoding == "json":
        try:
            return json.dumps(sample, separators=(",", ":"), allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"OpenTrackIO sample is not JSON-serialisable: {exc}") from exc
    try:
        import cbor2
    except ImportError as exc:           # optional: motionctl does not depend on it
        raise ValueError('OpenTrackIO encoding "cbor" needs the cbor2 package; use "json"') from exc
    return cbor2.dumps(sample)


def encode_udp(sample: Mapping, sequence: int, encoding: str = "json", *,
               max_payload: int = DEFAULT_MAX_PAYLOAD, checksum_modulo: int = 256) -> list[bytes]:
    """The datagrams of one sample: 16-byte header + at most ``max_payload`` payload bytes each.

    The header sequence number is ``sequence`` modulo 2**16, the same in every segment of the sample.
    """
    if encoding not in _ENCODINGS:
        raise ValueError(f'OpenTrackIO encoding must be "json" or "cbor", got {encoding!r}')
    if (isinstance(max_payload, bool) or not isinstance(max_payload, int)
            or not 1 <= max_payload <= MAX_SEGMENT_PAYLOAD):
        raise ValueError(f"max_payload must be an integer 1..{MAX_SEGMENT_PAYLOAD}, got {max_payload!r}")
    payload = _payload(sample, encoding)
    if len(payload) > 0xFFFFFFFF:
        raise ValueError("OpenTrackIO payload too large for 32-bit segment offsets")
    seq = int(sequence) & 0xFFFF
    datagrams = []
    for offset in range(0, len(payload), max_payload):
        chunk = payload[offset:offset + max_payload]
        last = offset + len(chunk) >= len(payload)
        header = _HEADER.pack(IDENTIFIER, 0, _ENCODINGS[encoding], seq, offset,
                              (LAST_SEGMENT_FLAG if last else 0) | len(chunk))
        checksum = fletcher16(header + chunk, checksum_modulo)
        datagrams.append(header + checksum.to_bytes(2, "big") + chunk)
    return datagrams


@dataclass(frozen=True)
class Segment:
    """One verified datagram: its header fields and payload segment."""

    encoding: int
    sequence: int
    offset: int
    last: bool
    payload: bytes


def parse_datagram(data: bytes | bytearray | memoryview, *, checksum_modulo: int = 256) -> Segment:
    """Check one datagram's header, length and checksum; :class:`ProtocolError` when anything is off."""
    raw = bytes(data)
    if len(raw) < HEADER_LENGTH:
        raise ProtocolError(f"OpenTrackIO datagram of {len(raw)} bytes is shorter than its 16-byte header")
    ident, _reserved, encoding, seq, offset, flag_len = _HEADER.unpack_from(raw)
    if ident != IDENTIFIER:
        raise ProtocolError(f"OpenTrackIO datagram starts with {ident!r}, not b'OTrk'")
    if encoding not in (ENCODING_JSON, ENCODING_CBOR):
        raise ProtocolError(f"OpenTrackIO encoding 0x{encoding:02X} is neither JSON (0x01) nor CBOR (0x02)")
    length = flag_len & MAX_SEGMENT_PAYLOAD
    if len(raw) != HEADER_LENGTH + length:
        raise ProtocolError(f"OpenTrackIO header announces {length} payload bytes, datagram has "
                            f"{len(raw) - HEADER_LENGTH}")
    payload = raw[HEADER_LENGTH:]
    stored = int.from_bytes(raw[14:16], "big")
    computed = fletcher16(raw[:14] + payload, checksum_modulo)
    if stored != computed:
        raise ProtocolError(f"OpenTrackIO checksum 0x{stored:04X} does not match 0x{computed:04X}: "
                            f"the datagram is corrupt")
    return Segment(encoding, seq, offset, bool(flag_len & LAST_SEGMENT_FLAG), payload)


def decode_udp(datagrams: Iterable[bytes | bytearray | memoryview], *, checksum_modulo: int = 256) -> dict:
    """Reassemble and verify the datagrams of one sample (any order) and decode its payload."""
    segments = sorted((parse_datagram(d, checksum_modulo=checksum_modulo) for d in datagrams),
                      key=lambda s: s.offset)
    if not segments:
        raise ProtocolError("no OpenTrackIO datagrams to decode")
    first = segments[0]
    if any(s.sequence != first.sequence for s in segments):
        raise ProtocolError("OpenTrackIO segments of different sequence numbers: not one sample")
    if any(s.encoding != first.encoding for s in segments):
        raise ProtocolError("OpenTrackIO segments of one sample use different encodings")
    expected = 0
    for s in segments:
        if s.offset != expected:
            what = "missing bytes" if s.offset > expected else "overlapping segments"
            raise ProtocolError(f"OpenTrackIO sample has {what} at offset {expected}")
        expected += len(s.payload)
    if [s.last for s in segments] != [False] * (len(segments) - 1) + [True]:
        raise ProtocolError("OpenTrackIO sample must end with exactly one last segment")
    payload = b"".join(s.payload for s in segments)
    try:
        if first.encoding == ENCODING_JSON:
            sample = json.loads(payload.decode("utf-8"))
        else:
            import cbor2
            sample = cbor2.loads(payload)
    except ImportError as exc:
        raise ProtocolError("OpenTrackIO CBOR payload received but cbor2 is not installed") from exc
    except Exception as exc:          # malformed UTF-8 / JSON / CBOR: one error type for callers
        raise ProtocolError(f"OpenTrackIO payload does not decode: {exc}") from exc
    if not isinstance(sample, dict):
        raise ProtocolError("OpenTrackIO payload is not an object")
    return sample
