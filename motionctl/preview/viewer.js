// motionctl preview viewer: a small perspective renderer on a 2D canvas, no libraries, no network.
// DATA is injected by motionctl/preview/html.py.  Capsules are drawn as round-capped thick lines,
// solids as polygons, spheres as discs, back to front (painter's algorithm).
"use strict";
(function () {
  const D = DATA;
  const COLOURS = ["#2e7d32", "#f9a825", "#c62828"];
  const canvas = document.getElementById("view");
  const ctx = canvas.getContext("2d");
  const slider = document.getElementById("scrub");
  const tcBox = document.getElementById("tc");
  const poseBox = document.getElementById("pose");
  const speedCanvas = document.getElementById("speed");
  const sctx = speedCanvas.getContext("2d");
  const F = D.frames.length;
  let index = 0, playing = false, playStart = 0, playFrom = 0;

  // -- the orbit camera -------------------------------------------------------------------------------
  // Framed on what moves (the arm, the camera), not on the whole rig: a 7 m track under a 1.3 m arm left
  // the arm a speck in the middle of the canvas.  Static parts (the track's rail) may run off the edges.
  const C0 = D.caps[0];
  const moves = C0.map((c, k) => D.caps.some(f => f[k].some((v, j) => Math.abs(v - c[j]) > 1e-3)));
  const framed = moves.some(m => m) ? D.caps.flatMap(f => f.filter((c, k) => moves[k])) : D.caps.flat();
  const path = D.cam.map(m => [m[3], m[7], m[11], m[3], m[7], m[11]]);
  const rigLo = [0, 1, 2].map(i => Math.min(...framed.concat(path).map(c => Math.min(c[i], c[i + 3]))));
  const rigHi = [0, 1, 2].map(i => Math.max(...framed.concat(path).map(c => Math.max(c[i], c[i + 3]))));
  const target = [0, 1, 2].map(i => (rigLo[i] + rigHi[i]) / 2);
  const extent = Math.max(1.5, Math.hypot(rigHi[0] - rigLo[0], rigHi[1] - rigLo[1], rigHi[2] - rigLo[2]));
  const VIEWS = { iso: [-0.9, 0.45], top: [0, 1.5607], side: [0, 0.0], front: [Math.PI / 2, 0.0] };
  let yaw = VIEWS.iso[0], pitch = VIEWS.iso[1], dist = extent * 1.25;

  function basis() {
    const cp = Math.cos(pitch), sp = Math.sin(pitch), cy = Math.cos(yaw), sy = Math.sin(yaw);
    const back = [cp * sy, -cp * cy, sp];                 // from target towards the eye
    const eye = target.map((t, i) => t + back[i] * dist);
    let right = [cy, sy, 0];
    const up = [-sp * sy, sp * cy, cp];
    return { eye, back, right, up };
  }
  function project(p, B, scale) {
    const d = [p[0] - B.eye[0], p[1] - B.eye[1], p[2] - B.eye[2]];
    const z = -(d[0] * B.back[0] + d[1] * B.back[1] + d[2] * B.back[2]);
    const x = d[0] * B.right[0] + d[1] * B.right[1] + d[2] * B.right[2];
    const y = d[0] * B.up[0] + d[1] * B.up[1] + d[2] * B.up[2];
    const zz = Math.max(z, 0.05);
    return [canvas.width / 2 + scale * x / zz, canvas.height / 2 - scale * y / zz, zz];
  }

  // -- drawing ----------------------------------------------------------------------------------------
  function draw() {
    const W = canvas.width, H = canvas.height, B = basis(), scale = 0.9 * Math.min(W, H);
    ctx.fillStyle = "#f4f4f2"; ctx.fillRect(0, 0, W, H);
    const items = [];
    D.solids.forEach(s => {
      const fill = s.kind === "keepout" ? "rgba(123,31,162,0.22)" : (s.name.match(/floor/i) ? "rgba(190,190,185,0.5)" : "rgba(120,125,135,0.55)");
      (s.faces || []).forEach(f => {
        const P = f.map(p => project(p, B, scale));
        items.push({ z: P.reduce((a, p) => a + p[2], 0) / P.length - (s.name.match(/floor/i) ? 1e3 : 0), kind: "poly", P, fill });
      });
      if (s.sphere) { const c = project(s.sphere[0], B, scale); items.push({ z: c[2], kind: "disc", c, r: scale * s.sphere[1] / c[2], fill }); }
      if (s.capsule) { const a = project(s.capsule[0], B, scale), b = project(s.capsule[1], B, scale);
        items.push({ z: (a[2] + b[2]) / 2, kind: "cap", a, b, w: 2 * scale * s.capsule[2] / ((a[2] + b[2]) / 2), stroke: fill }); }
    });
    const caps = D.caps[index], cols = D.colours[index];
    if (D.ghost) D.ghost[index].forEach((c, k) => {
      const a = project(c.slice(0, 3), B, scale), b = project(c.slice(3, 6), B, scale), z = (a[2] + b[2]) / 2;
      items.push({ z, kind: "cap", a, b, w: 2 * scale * D.radii[k] / z, stroke: "rgba(60,90,200,0.25)" });
    });
    caps.forEach((c, k) => {
      const a = project(c.slice(0, 3), B, scale), b = project(c.slice(3, 6), B, scale), z = (a[2] + b[2]) / 2;
      items.push({ z, kind: "cap", a, b, w: Math.max(2, 2 * scale * D.radii[k] / z), stroke: COLOURS[cols[k]], edge: true });
    });
    items.sort((p, q) => q.z - p.z);
    for (const it of items) {
      if (it.kind === "poly") {
        ctx.beginPath(); it.P.forEach((p, i) => (i ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1]))); ctx.closePath();
        ctx.fillStyle = it.fill; ctx.fill(); ctx.strokeStyle = "rgba(0,0,0,0.15)"; ctx.lineWidth = 1; ctx.stroke();
      } else if (it.kind === "disc") {
        ctx.beginPath(); ctx.arc(it.c[0], it.c[1], Math.max(1, it.r), 0, 2 * Math.PI); ctx.fillStyle = it.fill; ctx.fill();
      } else {
        ctx.lineCap = "round";
        if (it.edge) { ctx.strokeStyle = "rgba(0,0,0,0.5)"; ctx.lineWidth = it.w + 2; line(it.a, it.b); }
        ctx.strokeStyle = it.stroke; ctx.lineWidth = it.w; line(it.a, it.b);
      }
    }
    // camera path, current camera, frustum
    ctx.strokeStyle = "rgba(20,60,200,0.8)"; ctx.lineWidth = 1.5; ctx.beginPath();
    D.cam.forEach((m, i) => { const p = project([m[3], m[7], m[11]], B, scale); i ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1]); });
    ctx.stroke();
    const m = D.cam[index], o = [m[3], m[7], m[11]], r = [m[0], m[4], m[8]], f = [m[1], m[5], m[9]], u = [m[2], m[6], m[10]];
    const t = Math.tan(D.hfov[index] * Math.PI / 360), L = 0.6, tv = t * 9 / 16;
    const corners = [[1, 1], [1, -1], [-1, -1], [-1, 1]].map(([sx, sy]) => o.map((v, i) => v + L * (f[i] + sx * t * r[i] + sy * tv * u[i])));
    const po = project(o, B, scale), pc = corners.map(c => project(c, B, scale));
    ctx.strokeStyle = "#1a237e"; ctx.lineWidth = 1.5;
    pc.forEach(c => line(po, c)); ctx.beginPath(); pc.forEach((c, i) => (i ? ctx.lineTo(c[0], c[1]) : ctx.moveTo(c[0], c[1]))); ctx.closePath(); ctx.stroke();
    ctx.fillStyle = "#1a237e"; ctx.beginPath(); ctx.arc(po[0], po[1], 4, 0, 2 * Math.PI); ctx.fill();
  }
  function line(a, b) { ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke(); }

  function drawSpeed() {
    const W = speedCanvas.width, H = speedCanvas.height, top = Math.max(0.01, ...D.speed);
    sctx.fillStyle = "#fff"; sctx.fillRect(0, 0, W, H);
    sctx.strokeStyle = "#1565c0"; sctx.beginPath();
    D.speed.forEach((v, i) => { const x = i / Math.max(F - 1, 1) * W, y = H - 4 - v / top * (H - 8); i ? sctx.lineTo(x, y) : sctx.moveTo(x, y); });
    sctx.stroke();
    const x = index / Math.max(F - 1, 1) * W;
    sctx.strokeStyle = "#c62828"; sctx.beginPath(); sctx.moveTo(x, 0); sctx.lineTo(x, H); sctx.stroke();
    sctx.fillStyle = "#333"; sctx.font = "11px sans-serif"; sctx.fillText(`max ${top.toFixed(2)} m/s`, 4, 12);
  }

  function show(i) {
    index = Math.max(0, Math.min(F - 1, i | 0));
    slider.value = index;
    tcBox.textContent = `frame ${D.frames[index]}  ${D.timecodes[index]}`;
    const s = D.slack[index], worst = Math.min(...s);
    poseBox.textContent = D.axes.map((a, k) => `${a} ${D.joints[index][k].toFixed(3)}${D.units[k]}`).join("   ")
      + `\ncamera head ${D.speed[index].toFixed(2)} m/s   worst clearance ${worst > 50 ? "-" : Math.abs(worst * 1000).toFixed(0) + (worst < 0 ? " mm inside its margin" : " mm clear of its margin")}`;
    document.body.dataset.frame = D.frames[index];
    document.body.dataset.timecode = D.timecodes[index];
    draw(); drawSpeed();
  }
  window.previewShow = show;
  // The closest-approach table: each row's frame link shows that frame.
  document.querySelectorAll("a.goto").forEach((link) => {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      const frame = +link.dataset.frame;
      let k = D.frames.findIndex((f) => f >= frame);
      if (k < 0) k = F - 1;
      show(k);
    });
  });

  function tick(now) {
    if (!playing) return;
    const frame = playFrom + (now - playStart) / 1000 * D.fps;
    let i = D.frames.findIndex(f => f >= frame);
    if (i < 0) { playing = false; i = F - 1; document.getElementById("play").textContent = "play"; }
    show(i);
    if (playing) requestAnimationFrame(tick);
  }
  document.getElementById("play").onclick = e => {
    playing = !playing; e.target.textContent = playing ? "pause" : "play";
    if (playing) { if (index >= F - 1) show(0); playStart = performance.now(); playFrom = D.frames[index]; requestAnimationFrame(tick); }
  };
  document.getElementById("tightest").onclick = () => show(D.minIndex);
  // Scrub by frame number or timecode: the nearest shown frame at or after it.
  const gotoBox = document.getElementById("goto");
  gotoBox.onkeydown = e => {
    e.stopPropagation();
    if (e.key !== "Enter") return;
    const text = gotoBox.value.trim();
    let i = D.timecodes.indexOf(text);
    if (i < 0 && /^\d+$/.test(text)) i = D.frames.findIndex(f => f >= +text);
    if (i < 0) { const tc = D.timecodes.findIndex(t => t.replace(/;/g, ":") >= text.replace(/;/g, ":")); i = tc; }
    gotoBox.style.background = i < 0 ? "#fdd" : "";
    if (i >= 0) show(i);
  };
  slider.max = F - 1; slider.oninput = () => show(+slider.value);
  document.querySelectorAll("[data-view]").forEach(b => b.onclick = () => { [yaw, pitch] = VIEWS[b.dataset.view]; draw(); });
  let drag = null;
  canvas.onmousedown = e => drag = [e.clientX, e.clientY, yaw, pitch];
  window.onmouseup = () => drag = null;
  window.onmousemove = e => { if (!drag) return; yaw = drag[2] - (e.clientX - drag[0]) * 0.01;
    pitch = Math.max(-1.2, Math.min(1.5607, drag[3] + (e.clientY - drag[1]) * 0.01)); draw(); };
  canvas.onwheel = e => { e.preventDefault(); dist *= Math.exp(e.deltaY * 0.001); draw(); };
  window.onkeydown = e => { if (e.key === "ArrowRight") show(index + 1); if (e.key === "ArrowLeft") show(index - 1);
    if (e.key === " ") document.getElementById("play").click(); };
  const m = location.hash.match(/frame=(\d+)/);
  show(m ? Math.max(0, D.frames.findIndex(f => f >= +m[1])) : 0);
})();
