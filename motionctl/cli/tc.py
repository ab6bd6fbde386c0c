"""``motionctl tc``: timecode for pipelines.

    motionctl tc --fps 29.97df 17982              frame -> label (00:10:00;00)
    motionctl tc --fps 29.97df 00:10:00;00        label -> frame (17982)
    motionctl tc gen --fps 25 --start 01:00:00:00 --seconds 10 --out tc.wav    LTC audio
    motionctl tc read tc.wav [--fps 25] [--json]  decode LTC: one line per frame (label, sample offset)
"""

from __future__ import annotations

import argparse
import json
import math

from motionctl.errors import TimecodeError
from motionctl.timecode import FRAME_RATES, FrameRate, Timecode, frame_to_label, label_to_frame


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tc", help="timecode: frame <-> label, LTC audio (tc gen, tc read)",
                       description="Convert a 0-based frame count (from 00:00:00:00) to its SMPTE label, or a "
                       "label to its frame count.  Rates: " + ", ".join(FRAME_RATES) + ".  Also: `motionctl tc "
                       "gen` writes LTC audio to a WAV file and `motionctl tc read` decodes one.")
    p.add_argument("value", help="a frame number (e.g. 17982) or a label (e.g. 00:10:00;00)")
    p.add_argument("--fps", required=True, help="frame rate, e.g. 25, 23.976, 29.97df")
    p.add_argument("--json", action="store_true", help="print frame, label and exact seconds as JSON")
    p.set_defaults(handler=run)

    g = sub.add_parser("tc-gen", help=argparse.SUPPRESS, prog="motionctl tc gen",
                       description="Write linear timecode (LTC) audio to a WAV file.")
    g.add_argument("--fps", required=True)
    g.add_argument("--start", default="00:00:00:00", help="label of the first frame")
    g.add_argument("--seconds", type=float, required=True)
    g.add_argument("--out", required=True, help="WAV file to write (16-bit mono)")
    g.add_argument("--sample-rate", type=int, default=48000)
    g.set_defaults(handler=run_gen)

    r = sub.add_parser("tc-read", help=argparse.SUPPRESS, prog="motionctl tc read",
                       description="Decode LTC from a WAV file: one line per frame, its label and the sample "
                       "offset where the frame starts.  Reads forwards and backwards, off-speed and noisy audio.")
    r.add_argument("wav")
    r.add_argument("--fps", default=None, help="expected rate (default: inferred from the audio)")
    r.add_argument("--json", action="store_true", help="one JSON object per frame, per line")
    r.set_defaults(handler=run_read)
    # ``tc gen`` / ``tc read`` are routed to these; argparse would list a suppressed sub-command in the main
    # --help as "==SUPPRESS==" (a known argparse limitation), so they leave the listing.
    sub._choices_actions[:] = [a for a in sub._choices_actions if a.dest not in ("tc-gen", "tc-read")]


def route(argv: list[str]) -> list[str]:
    """``tc gen`` / ``tc read`` are separate parsers: ``tc`` alone takes a value."""
    if len(argv) >= 2 and argv[0] == "tc" and argv[1] in ("gen", "read"):
        return [f"tc-{argv[1]}", *argv[2:]]
    return argv


def run(args: argparse.Namespace) -> int:
    rate = FrameRate.parse(args.fps)
    text = args.value.strip()
    if text.isdigit():
        frame = int(text)
        label = frame_to_label(frame, rate)
        result = label
    elif text.startswith("-") and text[1:].isdigit():
        raise TimecodeError(f"frame numbers start at 0, got {text}")
    else:
        frame = label_to_frame(text, rate)
        label = frame_to_label(frame, rate)
        result = str(frame)
    if args.json:
        seconds = Timecode(frame, rate).seconds
        print(json.dumps({"fps": rate.label, "frame": frame, "label": label,
                          "seconds": float(seconds), "seconds_exact": f"{seconds.numerator}/{seconds.denominator}"}))
    else:
        print(result)
    return 0


def run_gen(args: argparse.Namespace) -> int:
    from motionctl.ltc import encode, frames_per_word, write_wav

    rate = FrameRate.parse(args.fps)
    start = Timecode.parse(args.start, rate)
    if not 0 < args.seconds <= 24 * 3600:
        raise TimecodeError(f"--seconds must be within 0..86400, got {args.seconds:g}")
    if not 8000 <= args.sample_rate <= 192000:
        raise TimecodeError(f"--sample-rate must be within 8000..192000 Hz, got {args.sample_rate}")
    step = frames_per_word(rate)
    count = int(math.ceil(args.seconds * float(rate.fps) / step)) * step
    samples = encode(start.frame, count, rate, args.sample_rate)
    write_wav(args.out, samples, args.sample_rate)
    print(f"wrote {args.out}: {count} frames of {rate.label} fps LTC from {start.label}, "
          f"{len(samples) / args.sample_rate:.3f} s at {args.sample_rate} Hz")
    return 0


def run_read(args: argparse.Namespace) -> int:
    from motionctl.ltc import decode, read_wav

    samples, sample_rate = read_wav(args.wav)
    rate = FrameRate.parse(args.fps) if args.fps else None
    frames = decode(samples, sample_rate, rate)
    if not frames:
        raise TimecodeError(f"{args.wav}: no LTC found in {len(samples) / sample_rate:.2f} s of audio")
    for f in frames:
        if args.json:
            print(json.dumps({"label": f.label, "frame": f.frame, "sample": f.start_sample, "reverse": f.reverse,
                              "drop_frame": f.drop_frame}))
        else:
            print(f"{f.label}  {f.start_sample}" + ("  reverse" if f.reverse else ""))
    return 0
