"""The self-contained offline HTML page: the data and the viewer inlined, nothing fetched, ever."""

from __future__ import annotations

import html
import json
import math
from importlib import resources

import numpy as np

from motionctl.preview.scene import AMBER_BAND_M, PreviewData
from motionctl.spec.rig import Rig

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 0; background: #fafafa; color: #222; }}
header {{ padding: 8px 14px; border-bottom: 1px solid #ddd; }}
.verdict {{ font-weight: bold; padding: 2px 8px; border-radius: 4px; color: #fff; }}
.LEGAL {{ background: #2e7d32; }} .ILLEGAL {{ background: #c62828; }} .TAKE {{ background: #1565c0; }}
main {{ display: flex; gap: 12px; padding: 10px 14px; }}
#view {{ border: 1px solid #ccc; background: #f4f4f2; cursor: grab; }}
aside {{ width: 360px; font-size: 13px; }}
#tc {{ font: bold 20px monospace; }}
#pose {{ white-space: pre-wrap; font: 12px monospace; }}
button {{ margin: 2px; }}
li.bad {{ color: #c62828; }}
.key span {{ display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 10px; vertical-align: middle; }}
table.approach {{ border-collapse: collapse; width: 100%; }}
table.approach td, table.approach th {{ padding: 1px 4px; text-align: left; }}
tr.keepout td:first-child {{ color: #7b1fa2; font-weight: bold; }}
tr.near {{ background: #fff3cd; }} tr.bad {{ color: #c62828; font-weight: bold; }}
/* A narrow window (a laptop, a 900 px browser): the verdict, the people and the check above the view. */
@media (max-width: 1360px) {{
  main {{ flex-wrap: wrap; }}
  aside {{ order: -1; width: 100%; }}
  #view {{ max-width: calc(100vw - 30px); height: auto; }}
  #scrub {{ max-width: 60vw; }}
}}
</style></head>
<body>
<header><span class="verdict {verdict}">{verdict}</span> <b>{title}</b> &nbsp; {subtitle}</header>
<main>
<div>
<canvas id="view" width="960" height="600"></canvas><br>
<button id="play">play</button>
<input id="scrub" type="range" min="0" value="0" style="width: 640px">
<button id="tightest">go to the tightest clearance</button>
<input id="goto" size="13" placeholder="frame or timecode" title="a frame number or a timecode, then Enter"><br>
views: <button data-view="iso">3/4</button><button data-view="top">top</button><button data-view="side">side</button><button data-view="front">front</button>
&nbsp; drag to orbit, wheel to zoom, arrow keys step, space plays
<div class="key">clearance: <span style="background:#2e7d32"></span>clear <span style="background:#f9a825"></span>within {amber} mm of the margin <span style="background:#c62828"></span>inside the margin <span style="background:rgba(123,31,162,0.45)"></span>a person's keep-out zone</div>
</div>
<aside>
<div id="tc"></div>
<div id="pose"></div>
<p><b>camera-head speed</b><br><canvas id="speed" width="360" height="90"></canvas></p>
<p><b>closest to people and the set</b></p>
<table class="approach"><tr><th></th><th>closest</th><th>needs</th><th>when</th><th>by</th></tr>{approaches}</table>
<p><b>tightest moment</b><br>{min_text}</p>
<p><b>check</b></p><ul>{violations}</ul>
</aside>
</main>
<script>const DATA = {data};</script>
<script>{viewer}</script>
</body></html>
"""


def _round(array: np.ndarray, digits: int = 4) -> list:
    return np.round(np.asarray(array, dtype=float), digits).tolist()


def page(data: PreviewData, rig: Rig, subtitle: str = "") -> str:

    n = data.joints.shape[1]
    axes = [a.name for a in rig.axes][:n]
    scale = np.array([1.0 if a.linear else 180.0 / math.pi for a in rig.axes][:n])
    units = [" m" if a.linear else "°" for a in rig.axes][:n]
    F, C = data.capsules.shape[:2]
    payload = {
        "frames": data.frames, "timecodes": data.timecodes, "fps": data.fps,
        "caps": _round(data.capsules.reshape(F, C, 6)), "radii": _round(data.radii),
        "colours": data.colours.tolist(), "slack": _round(np.minimum(data.slack_m, 99.0)),
        "cam": _round(data.camera.reshape(F, 16), 5), "hfov": _round(data.hfov_deg, 2),
        "speed": _round(data.speed_mps, 3), "joints": _round(data.joints * scale, 4), "axes": axes, "units": units,
        "solids": [{"name": s.name, "kind": s.kind, "faces": [_round(f) for f in s.faces],
                    "sphere": s.sphere, "capsule": s.capsule} for s in data.solids],
        "minIndex": data.min_frame_index,
        "ghost": _round(data.ghost.reshape(F, C, 6)) if data.ghost is not None else None,
    }
    viewer = resources.files("motionctl.preview").joinpath("viewer.js").read_text(encoding="utf-8")
    items = "".join(f'<li class="bad">{html.escape(v)}</li>' for v in data.violations) or "<li>no violations</li>"
    approaches = "".join(_approach_row(a) for a in _shown_approaches(data.approaches))
    return PAGE.format(title=html.escape(data.title), verdict=data.verdict, subtitle=html.escape(subtitle),
                       amber=int(AMBER_BAND_M * 1000), min_text=html.escape(data.min_text), violations=items,
                       approaches=approaches,
                       data=json.dumps(payload, separators=(",", ":")).replace("</", "<\\/"), viewer=viewer)


#: Obstacles listed beside every person and the arm itself (the closest ones; the rest are far).
OBSTACLES_SHOWN = 4


def _shown_approaches(approaches: list) -> list:
    """Every person, the closest obstacles, and the arm against itself: people first."""
    people = [a for a in approaches if a.kind == "keepout"]
    obstacles = [a for a in approaches if a.kind == "obstacle"][:OBSTACLES_SHOWN]
    return people + obstacles + [a for a in approaches if a.kind == "self"]


def _approach_row(a) -> str:
    """One row: what (person / set / the arm), closest mm, margin, frame and timecode (a link to it), link."""
    label = {"keepout": "person", "obstacle": "set", "self": ""}.get(a.kind, a.kind)
    css = "bad" if a.spare_m < 0 else ("near" if a.spare_m < AMBER_BAND_M and a.kind != "self" else "")
    name = html.escape(a.other.replace("_", " "))
    return (f'<tr class="{a.kind} {css}" data-frame="{a.frame}"><td>{name}'
            + (f' <small>{label}</small>' if label else "")
            + f'</td><td>{a.min_m * 1000:.0f} mm</td><td>{a.required_m * 1000:.0f}</td>'
            f'<td><a href="#" class="goto" data-frame="{a.frame}">f{a.frame}</a> {html.escape(a.timecode)}</td>'
            f'<td>{html.escape(a.link)}</td></tr>')
