"""Plain-text rendering of reports for terminals (the JSON form is ``report.to_dict()``)."""

from __future__ import annotations

from motionctl.planner.report import CheckReport


def table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> list[str]:
    """Aligned columns; ``right`` holds the indexes of right-aligned (numeric) columns."""
    right = right or set()
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return [line(headers).rstrip(), *(line(r).rstrip() for r in rows)]


def render_check(report: CheckReport) -> str:
    out = [f"{report.move}  ({report.file})",
           f"rig {report.rig} | stage {report.stage or '-'} | {report.fps} fps | start {report.start} | "
           f"{report.frames} frames ({report.duration_s:.3f} s)", ""]
    if report.keys:
        axes = list(report.keys[0].joints) or [a["name"] for a in report.axes if a["kind"] != "lens"]
        rows = []
        for k in report.keys:
            cells = [str(k.index), str(k.frame), k.timecode, k.kind + ("" if k.reached else " (unreachable)")]
            cells += [f"{k.joints[a]:.3f}" if a in k.joints else "-" for a in axes]
            rows.append(cells)
        out += ["Keys (m / deg):"]
        out += ["  " + line for line in table(["#", "frame", "timecode", "kind", *axes], rows,
                                              right=set(range(4, 4 + len(axes))) | {0, 1})]
        out.append("")
    for name, value in report.extra.items():
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            out.append(f"{name}: {value:.4g}" if isinstance(value, float) else f"{name}: {value}")
    if report.violations:
        out.append(f"ILLEGAL: {len(report.violations)} violation(s)")
        for v in report.violations:
            span = (f"frame {v.first_frame} ({v.first_timecode})" if v.first_frame == v.last_frame else
                    f"frames {v.first_frame}-{v.last_frame} ({v.first_timecode} - {v.last_timecode})")
            out.append(f"  [{v.kind.value}] {v.subject}, {span}: {v.message}")
    else:
        out.append("LEGAL: every key is reachable within the rig's limits")
    return "\n".join(out)
