"""Plain-text rendering of reports for terminals (the JSON form is ``report.to_dict()``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:     # importing the planner costs a second: --help must not pay for it
    from motionctl.planner.report import CheckReport


def table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> list[str]:
    """Aligned columns; ``right`` holds the indexes of right-aligned (numeric) columns."""
    right = right or set()
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return [line(headers).rstrip(), *(line(r).rstrip() for r in rows)]


def _indent(lines: list[str]) -> list[str]:
    return ["  " + line for line in lines]


def _keys(report: CheckReport) -> list[str]:
    if not report.keys:
        return []
    axes = [a["name"] for a in report.axes if a["kind"] != "lens"]
    rows = []
    for k in report.keys:
        cells = [str(k.index), str(k.frame), k.timecode, k.kind + ("" if k.reached else " (unreachable)")]
        cells += [f"{k.joints[a]:.3f}" if a in k.joints else "-" for a in axes]
        rows.append(cells)
    return ["Keys (m / deg):", *_indent(table(["#", "frame", "timecode", "kind", *axes], rows,
                                               right=set(range(4, 4 + len(axes))) | {0, 1})), ""]


def _axes(report: CheckReport) -> list[str]:
    peaks = report.extra.get("axis_peaks")
    if not peaks:
        return []
    rows = []
    for p in peaks:
        deg = p["unit"] == "rad"
        f = math.degrees if deg else (lambda x: x)
        unit = "deg" if deg else p["unit"]
        rows.append([p["name"], unit, f"{f(p['min']):.3f}", f"{f(p['max']):.3f}", f"{f(p['v']):.4g}",
                     f"{p['v_pct']:.0f}%", f"{f(p['a']):.4g}", f"{p['a_pct']:.0f}%", f"{f(p['j']):.4g}",
                     f"{p['j_pct']:.0f}%"])
    head = ["axis", "unit", "min", "max", "peak v", "of vmax", "peak a", "of amax", "peak j", "of jmax"]
    return ["Axes over the move (per second, s^2, s^3):", *_indent(table(head, rows, right=set(range(2, 10)))), ""]


def _measurements(report: CheckReport) -> list[str]:
    x = report.extra
    out = []
    if "peak_camera_speed_mps" in x:
        out.append(f"  peak camera speed     {x['peak_camera_speed_mps']:.3f} m/s")
    if "max_path_error_mm" in x:
        out.append(f"  camera path error     {x['max_path_error_mm']:.2e} mm, {x['max_path_error_deg']:.2e} deg "
                   f"(max over every tick; bound 0.1 mm, 0.01 deg)")
    if "min_clearance_m" in x:
        at = x["min_clearance_at"]
        out.append(f"  min clearance         {x['min_clearance_m'] * 1000:.0f} mm: {at['link']} to {at['other']} at "
                   f"frame {at['frame']} ({at['timecode']}), needs {at['required_m'] * 1000:.0f} mm")
    if "tightest_at" in x:
        t = x["tightest_at"]
        out.append(f"  tightest moment       {t['spare_m'] * 1000:+.1f} mm spare: {t['link']} to {t['other']} "
                   f"({t['kind']}) at frame {t['frame']} ({t['timecode']}), {t['min_m'] * 1000:.0f} mm of "
                   f"{t['required_m'] * 1000:.0f} mm needed")
    if "shortest_legal_duration_s" in x:
        shortest = x["shortest_legal_duration_s"]
        out.append("  shortest legal        " + (f"{shortest:.3f} s (uniform retiming)" if shortest is not None
                                                 else "none: the path itself breaks a position or clearance limit"))
    if "retime" in x:
        r = x["retime"]
        line = (f"  retimed ({r['mode']})     {r['frames_before']} -> {r['frames_after']} frames, "
                f"{r['duration_before_s']:.3f} s -> {r['duration_after_s']:.3f} s")
        if "toppra_duration_s" in r:
            line += f" (TOPP-RA optimum without jerk limits: {r['toppra_duration_s']:.3f} s)"
        out.append(line)
    return (["Measured on every servo tick:", *out, ""]) if out else []


def _closest(report: CheckReport, count: int = 5) -> list[str]:
    pairs = report.extra.get("clearances") or []
    if not pairs:
        return []
    rows = [[p["link"], p["other"], p["kind"], f"{p['min_m'] * 1000:.0f}", f"{p['required_m'] * 1000:.0f}",
             str(p["frame"]), p["timecode"]] for p in pairs[:count]]
    return [f"Closest approaches (of {len(pairs)} pairs):",
            *_indent(table(["link", "to", "kind", "min mm", "needs mm", "frame", "timecode"], rows,
                           right={3, 4, 5})), ""]


def render_check(report: CheckReport) -> str:
    rate = f" | {report.extra['rate_hz']} Hz" if "rate_hz" in report.extra else ""
    out = [f"{report.move}  ({report.file})",
           f"rig {report.rig} | stage {report.stage or '-'} | {report.fps} fps | start {report.start}{rate} | "
           f"{report.frames} frames ({report.duration_s:.3f} s)", ""]
    out += _keys(report) + _axes(report) + _measurements(report) + _closest(report)
    if report.violations:
        out.append(f"ILLEGAL: {len(report.violations)} violation(s)")
        for v in report.violations:
            span = (f"frame {v.first_frame} ({v.first_timecode})" if v.first_frame == v.last_frame else
                    f"frames {v.first_frame}-{v.last_frame} ({v.first_timecode} - {v.last_timecode})")
            out.append(f"  [{v.kind.value}] {v.subject}, {span}: {v.message}")
    elif "rate_hz" in report.extra:
        out.append("LEGAL: every servo tick is within the limits and clearances")
    else:
        out.append("LEGAL: every key is reachable within the rig's limits")
    return "\n".join(out)


def render_together(report) -> str:
    """The rigs of a stage network checked together: the closest approach of each pair, and the verdict."""
    verdict = "LEGAL together" if report.ok else "NOT LEGAL together"
    lines = [f"Together ({', '.join(f'{n} from tick {t}' for n, t in report.offsets.items())}; "
             f"{report.ticks} ticks at {report.rate_hz} Hz; margin {report.margin_m * 1000:.0f} mm): {verdict}"]
    rows = [[f"{p.rig_a} {p.link_a}", f"{p.rig_b} {p.link_b}", f"{p.min_m * 1000:.0f}", p.timecode,
             str(p.ticks_inside_margin)] for p in report.pairs]
    lines += _indent(table(["link", "other rig's link", "closest mm", "at", "ticks inside margin"], rows, {2, 4}))
    lines += [f"  VIOLATION: {v}" for v in report.violations()]
    return "\n".join(lines)
