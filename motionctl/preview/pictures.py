"""PNG pictures for paper and chat, and an animated GIF, drawn with matplotlib (Agg, no display needed).

* a contact sheet: top, side and front orthographic views at regular frames, the set drawn in, the rig's
  capsules coloured by clearance;
* clearance over time (worst pair per link group) against the margin;
* per-axis velocity and acceleration against their limits;
* an animated GIF of the move from a chosen viewpoint.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from motionctl.preview.scene import KIND_ORDER, SELF, PreviewData, closest_person_text
from motionctl.spec.rig import Rig

COLOURS = ("#2e7d32", "#f9a825", "#c62828")
#: Orthographic views: (name, horizontal axis, vertical axis) of the stage frame (x right, y towards the
#: wall, z up).
VIEWS = {"top": (0, 1), "side": (1, 2), "front": (0, 2)}


def _matplotlib():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


#: Keep-out zones (people) and obstacles (the set), as every picture and the page draw them.
KEEPOUT_COLOUR, OBSTACLE_COLOUR = "#7b1fa2", "#8d949c"    # people violet: never mistaken for red or amber


def _draw_set(ax, data: PreviewData, h: int, v: int) -> None:
    """The set in one orthographic view, drawn once: obstacles grey, people's keep-out zones violet with
    their names, the floor as a line where the view is from the side, and a 1 m scale bar."""
    from matplotlib.patches import Circle, Polygon

    for solid in data.solids:
        person = solid.kind == "keepout"
        colour = KEEPOUT_COLOUR if person else OBSTACLE_COLOUR
        alpha = 0.3 if person else 0.35
        if "floor" in solid.name.lower():
            if v == 2 and solid.faces:                   # seen from the side: the floor is a line
                z = float(np.mean([p[2] for p in solid.faces[0]]))
                ax.axhline(z, color="#5d4037", linewidth=1.5, zorder=1)
                ax.text(0.99, z, " floor", transform=ax.get_yaxis_transform(), ha="right", va="bottom",
                        fontsize=7, color="#5d4037")
            continue
        for face in solid.faces:
            points = np.asarray(face)[:, [h, v]]
            ax.add_patch(Polygon(points, closed=True, facecolor=colour, edgecolor="none", alpha=alpha))
        if solid.sphere is not None:
            centre, radius = solid.sphere
            ax.add_patch(Circle((centre[h], centre[v]), radius, facecolor=colour, alpha=alpha))
        if solid.capsule is not None:
            a, b, radius = solid.capsule
            ax.plot([a[h], b[h]], [a[v], b[v]], color=colour, alpha=alpha, linewidth=2, solid_capstyle="round")
        if person:
            centre = _points(solid).mean(axis=0)
            ax.text(centre[h], centre[v], solid.name.replace("_", " "), ha="center", va="center", fontsize=7,
                    color=KEEPOUT_COLOUR, fontweight="bold", clip_on=True)
    _scale_bar(ax)


def _scale_bar(ax) -> None:
    """1 m, bottom left, in data units (the views are equal-aspect metres)."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    x, y = x0 + 0.05 * (x1 - x0), y0 + 0.05 * (y1 - y0)
    ax.plot([x, x + 1.0], [y, y], color="black", linewidth=2, solid_capstyle="butt")
    ax.text(x + 0.5, y + 0.015 * (y1 - y0), "1 m", ha="center", va="bottom", fontsize=7)


def _points(solid) -> np.ndarray:
    """Every corner point of ``solid`` (n, 3), for framing and labels."""
    points = [np.asarray(face, dtype=float) for face in solid.faces]
    if solid.sphere is not None:
        centre, radius = solid.sphere
        points.append(np.asarray(centre) + radius * np.vstack([np.eye(3), -np.eye(3)]))
    if solid.capsule is not None:
        a, b, radius = solid.capsule
        points.append(np.vstack([np.asarray(a) + radius * np.vstack([np.eye(3), -np.eye(3)]),
                                 np.asarray(b) + radius * np.vstack([np.eye(3), -np.eye(3)])]))
    return np.vstack(points) if points else np.zeros((0, 3))


class _Rig:
    """The rig's artists in one view, made once and moved frame by frame (an animation redraws only them)."""

    def __init__(self, ax, data: PreviewData, h: int, v: int, scale: float, ghost: bool = False) -> None:
        self.data, self.h, self.v, self.ghost = data, h, v, ghost
        capsules = data.ghost if ghost else data.capsules
        self.capsules = capsules
        self.lines = [ax.plot([], [], linewidth=max(1.0, 2 * data.radii[c] * scale), solid_capstyle="round",
                              alpha=0.3 if ghost else 0.95, color="#3a5ac8")[0] for c in range(capsules.shape[1])]
        self.view = None if ghost else ax.plot([], [], color="#1a237e", linewidth=1.2)[0]
        self.artists = self.lines + ([self.view] if self.view is not None else [])

    def show(self, i: int) -> None:
        h, v = self.h, self.v
        for c, line in enumerate(self.lines):
            a, b = self.capsules[i, c]
            line.set_data([a[h], b[h]], [a[v], b[v]])
            if not self.ghost:
                line.set_color(COLOURS[int(self.data.colours[i, c])])
        if self.view is not None:
            m = self.data.camera[i]
            o, f = m[:3, 3], m[:3, 1]
            self.view.set_data([o[h], o[h] + 0.5 * f[h]], [o[v], o[v] + 0.5 * f[v]])


def _panel(ax, data: PreviewData, h: int, v: int, scale: float, xlim, ylim) -> list[_Rig]:
    """One orthographic picture: the set, the plan's ghost under a take, the rig (show a frame with
    ``rig.show(i)`` on what is returned)."""
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    _draw_set(ax, data, h, v)
    rigs = [_Rig(ax, data, h, v, scale, ghost=True)] if data.ghost is not None else []
    return rigs + [_Rig(ax, data, h, v, scale)]


def _limits(data: PreviewData, h: int, v: int, pad: float = 0.4):
    """A square view of the rig's whole move and every person's keep-out zone (people are never cut off)."""
    points = [data.capsules[..., [h, v]].reshape(-1, 2)]
    points += [_points(s)[:, [h, v]] for s in data.solids if s.kind == "keepout"]
    points = np.vstack(points)
    lo, hi = points.min(axis=0) - pad, points.max(axis=0) + pad
    span = max(hi - lo)
    centre = (lo + hi) / 2
    return (centre[0] - span / 2, centre[0] + span / 2), (centre[1] - span / 2, centre[1] + span / 2), span


def contact_sheet(data: PreviewData, path: Path, columns: int = 6) -> Path:
    plt = _matplotlib()
    picks = np.unique(np.linspace(0, len(data.frames) - 1, columns).round().astype(int))
    if data.min_frame_index not in picks:
        picks = np.sort(np.append(picks[:-1] if len(picks) >= columns else picks, data.min_frame_index))
    fig, axes = plt.subplots(3, len(picks), figsize=(2.6 * len(picks), 8.4), squeeze=False)
    for row, (name, (h, v)) in enumerate(VIEWS.items()):
        xlim, ylim, span = _limits(data, h, v)
        for col, i in enumerate(picks):
            ax = axes[row][col]
            for rig in _panel(ax, data, h, v, 2.6 * 72 / span * 0.8, xlim, ylim):
                rig.show(i)
            worst = float(np.min(data.slack_m[i]))
            title = f"{name}  f{data.frames[i]}\n{data.timecodes[i]}"
            ax.set_title(title, fontsize=8, color=COLOURS[2] if worst < 0 else "black")
    fig.suptitle(f"{data.title}: {data.verdict}" + (f" - {data.violations[0]}" if data.violations else ""),
                 fontsize=10, color=COLOURS[2] if data.verdict == "ILLEGAL" else "black")
    fig.text(0.01, 0.005, "rig: green clear, amber close to a person's or the set's margin, red inside a margin; "
             f"violet: people's keep-out zones; grey: the set.  {closest_person_text(data)}{data.min_text}",
             fontsize=8)
    fig.tight_layout(rect=(0, 0.02, 1, 0.96))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def clearance_plot(data: PreviewData, path: Path) -> Path:
    plt = _matplotlib()
    fig, ax = plt.subplots(figsize=(11, 4.0))
    # One curve per thing approached, named by it (people first, bold): what a stunt coordinator asks is
    # "how close does it come to my performer", not "how close does wrist_3 come to anything".
    kinds = {a.other: a.kind for a in data.approaches}
    people = iter([KEEPOUT_COLOUR, "#00838f", "#283593", "#ad1457", "#4e342e"])
    for other in sorted(data.spare_by_other, key=lambda o: (KIND_ORDER.get(kinds.get(o, "obstacle"), 1), o)):
        values = data.spare_by_other[other] * 1000
        kind = kinds.get(other, "self" if other == SELF else "obstacle")
        if kind != "keepout" and np.all(values > 600):
            continue                                  # far from everything, all the time: not drawn
        if kind == "keepout":
            ax.plot(data.frames, values, linewidth=2.2, color=next(people, KEEPOUT_COLOUR),
                    label=f"{other.replace('_', ' ')} (person)")
        elif kind == "self":
            ax.plot(data.frames, values, linewidth=0.8, color="#9e9e9e", linestyle=":", label="the arm itself")
        else:
            ax.plot(data.frames, values, linewidth=1, linestyle="--", label=other.replace("_", " "))
    ax.axhline(0, color=COLOURS[2], linestyle="--", linewidth=1, label="margin")
    ax.axhline(50, color=COLOURS[1], linestyle=":", linewidth=1)
    ax.axvline(data.frames[data.min_frame_index], color="black", linewidth=0.8)
    ax.set_xlabel("frame")
    ax.set_ylabel("spare beyond its margin (mm)")
    # Up to 600 mm of spare, or far enough up to show every person's closest approach.
    closest_people = [float(np.min(data.spare_by_other[o])) * 1000 for o, k in kinds.items()
                      if k == "keepout" and o in data.spare_by_other]
    top = max([600.0] + [1.15 * v for v in closest_people if v < 5000])
    ax.set_ylim(min(-20, ax.get_ylim()[0]), min(ax.get_ylim()[1], top))
    ax.set_title("\n".join([f"{data.title}: {data.verdict}", closest_person_text(data).rstrip("; "),
                             data.min_text]).replace("\n\n", "\n"), fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def runs_over(lo: np.ndarray, hi: np.ndarray, limit: float) -> list[tuple[int, int]]:
    """``(first, after)`` index ranges of consecutive bands reaching past ``+-limit``, to shade whole."""
    over = (hi > limit) | (lo < -limit)
    flips = np.flatnonzero(np.diff(np.concatenate([[0], over.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(flips[::2], flips[1::2])]


def axis_plots(data: PreviewData, rig: Rig, path: Path, fps: float) -> Path:
    """Velocity and acceleration of every arm axis against frames, with the limits drawn.

    A plan is drawn as a band from the lowest to the highest value over the servo ticks of each frame,
    so a spike between frames shows at its full height; a take, which has only positions, is drawn as
    their rate of change from frame to frame.
    """
    plt = _matplotlib()
    n = data.joints.shape[1]
    frames = np.asarray(data.frames, dtype=float)
    t = frames / fps
    bands = data.rate_bands
    # a band holds from its frame to the next shown one; the last is drawn as wide as the narrowest step
    edges = np.append(frames, frames[-1] + (np.diff(frames).min() if len(frames) > 1 else 1.0))
    fig, axes = plt.subplots(n, 2, figsize=(11, 1.5 * n + 0.6), sharex=True, squeeze=False)
    for k, axis in enumerate(rig.axes[:n]):
        scale = 1.0 if axis.linear else 180.0 / math.pi
        unit = "m" if axis.linear else "deg"
        if bands is not None:
            v_lo, v_hi, a_lo, a_hi = (bands[:, k, c] * scale for c in range(4))
        else:
            q = data.joints[:, k] * scale
            v_lo = v_hi = np.gradient(q, t) if len(t) > 1 else np.zeros_like(q)
            a_lo = a_hi = np.gradient(v_hi, t) if len(t) > 1 else np.zeros_like(q)
        for col, (lo, hi, limit, label) in enumerate(((v_lo, v_hi, axis.vmax * scale, f"{unit}/s"),
                                                      (a_lo, a_hi, axis.amax * scale, f"{unit}/s²"))):
            ax = axes[k][col]
            if bands is not None:
                ax.stairs(hi, edges, baseline=lo, fill=True, color="#1565c0", alpha=0.35)
                ax.stairs(hi, edges, baseline=lo, color="#1565c0", linewidth=0.8)
            else:
                ax.plot(frames, hi, linewidth=0.8, color="#1565c0")
            ax.axhline(limit, color=COLOURS[2], linestyle="--", linewidth=0.8)
            ax.axhline(-limit, color=COLOURS[2], linestyle="--", linewidth=0.8)
            for first, after in runs_over(lo, hi, limit):
                ax.axvspan(edges[first], edges[after], color=COLOURS[2], alpha=0.2, linewidth=0)
            ax.set_ylabel(f"{axis.name}\n{label}", fontsize=7)
            ax.tick_params(labelsize=7)
    per = "per servo tick, lowest to highest in each frame" if bands is not None else "frame to frame"
    axes[0][0].set_title(f"velocity, {per} (limits dashed)", fontsize=9)
    axes[0][1].set_title(f"acceleration, {per} (limits dashed)", fontsize=9)
    axes[-1][0].set_xlabel("frame")
    axes[-1][1].set_xlabel("frame")
    fig.suptitle(f"{data.title}: {data.verdict}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def animation(data: PreviewData, path: Path, view: str = "side", max_frames: int = 120) -> Path:
    """An animated GIF of the rig moving through the set from ``view`` (top, side or front).

    The set is drawn once; each frame restores that background and draws only the rig and the title on
    it (matplotlib's blitting), and every frame shares one palette.  matplotlib's own writer redraws the
    whole figure and builds a palette per frame: three times the time for the same pictures."""
    plt = _matplotlib()
    from PIL import Image

    h, v = VIEWS[view]
    picks = np.unique(np.linspace(0, len(data.frames) - 1, min(max_frames, len(data.frames))).round().astype(int))
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    xlim, ylim, span = _limits(data, h, v)
    rigs = _panel(ax, data, h, v, 6 * 72 / span * 0.8, xlim, ylim)
    title = ax.set_title(" ", fontsize=9)
    moving = [artist for rig in rigs for artist in rig.artists] + [title]
    for artist in moving:
        artist.set_animated(True)
    canvas = fig.canvas
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    frames = []
    for i in picks:
        for rig in rigs:
            rig.show(i)
        title.set_text(f"{data.title} ({view})  frame {data.frames[i]}  {data.timecodes[i]}")
        canvas.restore_region(background)
        for artist in moving:
            fig.draw_artist(artist)
        frames.append(Image.frombuffer("RGBA", canvas.get_width_height(), bytes(canvas.buffer_rgba())).convert("RGB"))
    plt.close(fig)
    # One palette for the whole film, from a strip of frames spread over it (colours that only show late,
    # a red link, are in it).
    sample = frames[:: max(1, len(frames) // 8)] + [frames[-1]]
    strip = Image.new("RGB", (sample[0].width * len(sample), sample[0].height))
    for k, frame in enumerate(sample):
        strip.paste(frame, (k * frame.width, 0))
    palette = strip.quantize(colors=255)
    film = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    step_s = max((data.frames[picks[-1]] - data.frames[0]) / data.fps / max(len(picks) - 1, 1), 0.02)
    film[0].save(path, save_all=True, append_images=film[1:], duration=max(20, round(step_s * 1000)), loop=0)
    return path
