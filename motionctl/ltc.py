"""SMPTE 12M linear timecode (LTC): one import for words, audio, the streaming reader and WAV files.

Why split: word layout and the encoder live in :mod:`motionctl.ltc_encode`, the reader in
:mod:`motionctl.ltc_decode`; this module re-exports both and adds the WAV helpers, so callers (the
CLI's ``ltc`` commands, the runtime's chase source, tests) need only ``motionctl.ltc``.  See those
modules for the bit layout, the timing rules and the decision for rates above 30 fps (one word per
frame pair at the half rate).

WAV files are read and written with the standard-library :mod:`wave` module only (integer PCM);
anything it cannot read is reported as one :class:`~motionctl.errors.InputError` line naming the file.
"""

from __future__ import annotations

import os
import wave

import numpy as np

from motionctl.errors import InputError
from motionctl.ltc_decode import LtcDecoder, LtcFrame, decode
from motionctl.ltc_encode import (BITS_PER_WORD, SYNC_WORD, encode, encode_words, frames_per_word, ltc_bits,
                                  ltc_rate, ltc_word, parse_word, polarity_bit, word_bits, word_from_bits,
                                  word_parity_ok)

__all__ = [
    "BITS_PER_WORD", "LtcDecoder", "LtcFrame", "SYNC_WORD", "decode", "encode", "encode_words",
    "frames_per_word", "ltc_bits", "ltc_rate", "ltc_word", "parse_word", "polarity_bit", "read_wav",
    "word_bits", "word_from_bits", "word_parity_ok", "write_wav",
]


def write_wav(path: str | os.PathLike[str], samples: np.ndarray, sample_rate: int) -> None:
    """Write mono float samples (clipped to [-1, 1]) as 16-bit PCM, the format every recorder plays."""
    name = os.fspath(path)
    x = np.asarray(samples)
    if x.ndim != 1 or not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise InputError(f"WAV samples must be a 1-D real array, got shape {x.shape}", file=name)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) \
            or not 1 <= sample_rate <= 768000:
        raise InputError(f"WAV sample rate must be an integer 1..768000 Hz, got {sample_rate!r}", file=name)
    pcm = np.round(np.clip(np.nan_to_num(x.astype(np.float64)), -1.0, 1.0) * 32767).astype("<i2")
    try:
        with open(name, "wb") as handle, wave.open(handle, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(int(sample_rate))
            out.writeframes(pcm.tobytes())
    except OSError as exc:
        raise InputError(f"cannot write WAV file: {exc.strerror or exc}", file=name) from None


def read_wav(path: str | os.PathLike[str], channel: int = 0) -> tuple[np.ndarray, int]:
    """``(samples, sample_rate)``: one channel (the first unless told) of 8/16/24/32-bit PCM as float32.

    Scaling is to [-1, 1): 8-bit is unsigned (offset 128), wider widths are signed little-endian.
    """
    name = os.fspath(path)
    try:
        with wave.open(name, "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise InputError("no such WAV file", file=name) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a WAV file", file=name) from None
    except OSError as exc:
        raise InputError(f"cannot read WAV file: {exc.strerror or exc}", file=name) from None
    except (wave.Error, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "truncated file"
        if "65534" in reason:
            reason += " (WAVE_FORMAT_EXTENSIBLE needs Python 3.12 or later)"
        elif "unknown format" in reason:
            reason += " (only integer PCM WAV is supported; convert float or compressed audio first)"
        raise InputError(f"not a readable PCM WAV file: {reason}", file=name) from None
    if width not in (1, 2, 3, 4):
        raise InputError(f"unsupported WAV sample width {8 * width} bits (8/16/24/32 supported)", file=name)
    if not 0 <= channel < channels:
        raise InputError(f"WAV file has {channels} channel(s); channel {channel} does not exist", file=name)
    frames = len(raw) // (width * channels)
    data = np.frombuffer(raw[:frames * width * channels], np.uint8).reshape(frames, channels, width)
    data = data[:, channel, :]
    if width == 1:
        out = (data[:, 0].astype(np.float32) - 128.0) / 128.0
    else:
        # Little-endian signed integer of any width: place the bytes in the top of an int32.
        wide = np.zeros((frames, 4), np.uint8)
        wide[:, 4 - width:] = data
        out = (wide.view("<i4")[:, 0].astype(np.float64) / 2.0**31).astype(np.float32)
    return out, rate
