"""``motionctl tc``: timecode arithmetic for pipelines (frame <-> label at an exact rate)."""

from __future__ import annotations

import argparse
import json

from motionctl.errors import TimecodeError
from motionctl.timecode import FRAME_RATES, FrameRate, Timecode, frame_to_label, label_to_frame


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tc", help="convert between frame numbers and timecode labels",
                       description="Convert a 0-based frame count (from 00:00:00:00) to its SMPTE label, or a "
                       "label to its frame count.  Rates: " + ", ".join(FRAME_RATES) + ".")
    p.add_argument("value", help="a frame number (e.g. 17982) or a label (e.g. 00:10:00;00)")
    p.add_argument("--fps", required=True, help="frame rate, e.g. 25, 23.976, 29.97df")
    p.add_argument("--json", action="store_true", help="print frame, label and exact seconds as JSON")
    p.set_defaults(handler=run)


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
