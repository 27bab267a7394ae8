"""The page of :func:`cnnkit.viz.conv_demo`: HTML, style and script in one string, no external resource.

The script reads the numbers cnnkit computed from the JSON block ``demo-data`` and draws one step at a
time. What it shows as results (y, the columns, the pooled values, the switches, dy, dx, dW, db) is that
data; what it computes itself is only the arithmetic it writes out (the terms of a dot product, the running
sums of the backward pass), and it prints whether that arithmetic ends at cnnkit's numbers.

DOM contract (the browser test reads it): every array is a ``<table class="grid" data-name=NAME
data-index=I>`` of ``<td data-i data-j>`` cells; the current dot product's terms are ``.term`` spans with
``.tx`` and ``.tw`` children, its sum ``#dot-sum`` and cnnkit's value ``#dot-cnnkit``; ``<body>`` carries
``data-phase`` and ``data-step``; buttons ``#prev``, ``#next``, ``#play`` and ``[data-phase-button=N]``.
"""

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{TITLE}}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 16px 24px; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px; }
.sub { color: #555; margin: 0 0 10px; }
nav button, #controls button { font: inherit; padding: 4px 10px; margin-right: 4px; cursor: pointer;
  border: 1px solid #999; background: #f6f6f6; border-radius: 4px; }
nav button.active { background: #2b6cb0; color: white; border-color: #2b6cb0; }
#controls { margin: 8px 0 12px; }
#step-label { margin-left: 8px; color: #444; }
.row { display: flex; flex-wrap: wrap; gap: 22px; align-items: flex-start; }
.col { display: flex; flex-direction: column; align-items: flex-start; gap: 8px; }
.col > h3 { font-size: 13px; margin: 0; font-weight: 600; }
.cap { font-size: 12px; color: #555; font-family: ui-monospace, monospace; }
table.grid { border-collapse: collapse; font: 12px ui-monospace, monospace; }
table.grid td { min-width: 24px; height: 22px; text-align: center; border: 1px solid #bbb; padding: 0; }
table.grid td.pad { color: #999; background: #f1f1f1; }
table.grid td.win { background: #cfe3ff; border-color: #2b6cb0; }
table.grid td.pad.win { background: #dfe9f6; }
table.grid td.filt { background: #ffe3b3; border-color: #c77c02; }
table.grid td.cur { background: #bdeebd; border: 2px solid #2f855a; font-weight: bold; }
table.grid td.max { outline: 2px solid #c53030; outline-offset: -2px; font-weight: bold; }
table.grid td.touched { background: #fde8e8; }
table.grid.small td { min-width: 18px; height: 18px; font-size: 11px; }
.readout { font: 13px ui-monospace, monospace; background: #fafafa; border: 1px solid #ddd; padding: 8px 10px;
  margin: 12px 0; border-radius: 4px; }
.readout .term .tx { color: #2b6cb0; } .readout .term .tw { color: #c77c02; }
.ok { color: #2f855a; font-weight: bold; } .bad { color: #c53030; font-weight: bold; }
.gemm .note { max-width: 460px; }
.gemm { display: grid; grid-template-columns: auto auto; gap: 8px 14px; align-items: start; }
.panel { display: none; } .panel.active { display: block; }
.note { color: #555; max-width: 900px; }
</style>
</head>
<body>
<h1>{{TITLE}}</h1>
<p class="sub" id="geometry"></p>
<nav id="phases"></nav>
<div id="controls">
  <button id="prev" title="previous step (left arrow)">&#9664; step</button>
  <button id="play" title="play or pause (space)">&#9654; play</button>
  <button id="next" title="next step (right arrow)">step &#9654;</button>
  <span id="step-label"></span>
</div>
<section class="panel" id="panel-0"></section>
<section class="panel" id="panel-1"></section>
<section class="panel" id="panel-2"></section>
<section class="panel" id="panel-3"></section>
<p class="note">Numbers computed by cnnkit: <code>cnnkit.functional.conv2d</code> (y),
<code>cnnkit.reference.conv.im2col</code> (cols), <code>max_pool2d</code> and its backward (pooled, switches,
dy), <code>conv2d_backward</code> (dx, dW, db). The page writes out the arithmetic and checks that it ends at
cnnkit's numbers. Keys: left/right arrows step, space plays.</p>
<script type="application/json" id="demo-data">{{DATA}}</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("demo-data").textContent);
const C = D.x.length, H = D.x[0].length, W = D.x[0][0].length;
const K = D.weight.length, F = D.weight[0][0].length, S = D.stride, P = D.padding;
const Ho = D.y[0].length, Wo = D.y[0][0].length, L = Ho * Wo;
const PF = D.pool_size, PS = D.pool_stride, Po = D.pooled[0].length, Qo = D.pooled[0][0].length;
const PHASES = [
  {title: "1. Convolution", steps: K * L, draw: drawConv},
  {title: "2. Max pooling", steps: K * Po * Qo, draw: drawPool},
  {title: "3. Backward: pooling", steps: K * Po * Qo, draw: drawPoolBack},
  {title: "4. Backward: convolution", steps: K * L, draw: drawConvBack},
];
const state = {phase: 0, step: 0};
let timer = null;

function fmt(v) {
  if (Number.isInteger(v)) return String(v);
  if (Math.abs(v) < 1e-12) return "0";
  return v.toFixed(2);
}
function factor(v) { return v < 0 ? `(${fmt(v)})` : fmt(v); }  // 2·(-1), not 2·-1
function same(a, b) { return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b)); }
function check(ok) {
  return ok ? '<span class="ok">= cnnkit &#10003;</span>' : '<span class="bad">differs from cnnkit</span>';
}
function zeros(a, b, c) {
  return Array.from({length: a}, () => Array.from({length: b}, () => new Array(c).fill(0)));
}
// One 2-D array as a table; cls(i, j) gives a cell's classes, text(i, j) its text.
function grid(name, index, rows, cols, cls, text, small) {
  let h = `<table class="grid${small ? " small" : ""}" data-name="${name}" data-index="${index}">`;
  for (let i = 0; i < rows; i++) {
    h += "<tr>";
    for (let j = 0; j < cols; j++) {
      h += `<td data-i="${i}" data-j="${j}" class="${cls(i, j)}">${text(i, j)}</td>`;
    }
    h += "</tr>";
  }
  return h + "</table>";
}
function column(title, body) { return `<div class="col"><h3>${title}</h3>${body}</div>`; }
function cap(text) { return `<div class="cap">${text}</div>`; }
function inside(i, j, r0, c0, n) { return i >= r0 && i < r0 + n && j >= c0 && j < c0 + n; }
function isPad(i, j) { return i < P || j < P || i >= H + P || j >= W + P; }
function convStep(s) { const k = Math.floor(s / L), l = s % L; return [k, Math.floor(l / Wo), l % Wo, l]; }
function poolStep(s) {
  const k = Math.floor(s / (Po * Qo)), m = s % (Po * Qo);
  return [k, Math.floor(m / Qo), m % Qo];
}

function drawConv(s) {
  const [k, i, j, l] = convStep(s), r0 = i * S, c0 = j * S;
  let input = "";
  for (let c = 0; c < C; c++) {
    input += cap(`x[${c}] (pad ${P})`) + grid("xp", c, H + 2 * P, W + 2 * P,
      (a, b) => [isPad(a, b) ? "pad" : "", inside(a, b, r0, c0, F) ? "win" : ""].join(" "),
      (a, b) => fmt(D.xp[c][a][b]));
  }
  let h = '<div class="row">' + column(`Input x: ${C} x ${H + 2 * P} x ${W + 2 * P} padded`, input);
  for (let kk = 0; kk < K; kk++) {
    let f = "";
    for (let c = 0; c < C; c++) {
      f += cap(`W${kk}[${c}]`) + grid("w", `${kk}-${c}`, F, F, () => (kk === k ? "filt" : ""),
        (a, b) => fmt(D.weight[kk][c][a][b]));
    }
    f += cap(`b${kk} = <span class="bias" data-k="${kk}">${fmt(D.bias[kk])}</span>`);
    h += column(`Filter W${kk}: ${C} x ${F} x ${F}`, f);
  }
  let out = "";
  for (let kk = 0; kk < K; kk++) {
    out += cap(`y[${kk}]`) + grid("y", kk, Ho, Wo,
      (a, b) => (kk === k && a === i && b === j ? "cur" : ""),
      (a, b) => (kk * L + a * Wo + b <= s ? fmt(D.y[kk][a][b]) : ""));
  }
  h += column(`Output y: ${K} x ${Ho} x ${Wo}`, out) + "</div>";

  // The dot product, channel by channel: the window of x times filter k, plus the bias.
  let lines = "", total = D.bias[k];
  for (let c = 0; c < C; c++) {
    const terms = [];
    let sum = 0;
    for (let a = 0; a < F; a++) for (let b = 0; b < F; b++) {
      const xv = D.xp[c][r0 + a][c0 + b], wv = D.weight[k][c][a][b];
      sum += xv * wv;
      terms.push(`<span class="term"><span class="tx">${fmt(xv)}</span>&middot;`
        + `<span class="tw">${factor(wv)}</span></span>`);
    }
    total += sum;
    lines += `<div>channel ${c}: ${terms.join(" + ")} = <span class="partial">${fmt(sum)}</span></div>`;
  }
  h += '<div class="readout" id="readout">'
    + `<div>y${k}[${i}, ${j}] = sum of x[:, ${r0}:${r0 + F}, ${c0}:${c0 + F}] &times; W${k} + b${k},`
    + ` with x padded (rows ${r0}..${r0 + F - 1}, columns ${c0}..${c0 + F - 1})</div>${lines}`
    + `<div>partials + b${k} (${fmt(D.bias[k])}) = <span id="dot-sum">${fmt(total)}</span>;`
    + ` cnnkit's y: <span id="dot-cnnkit">${fmt(D.y[k][i][j])}</span>`
    + ` ${check(same(total, D.y[k][i][j]))}</div></div>`;

  // im2col's matrix view: Y (K x L) = W (K x C*F*F) @ cols (C*F*F x L) + b.
  const wmat = D.weight.map((f) => f.flat(2));
  h += '<h3>The same numbers as one matrix multiply (im2col): Y = W &middot; cols + b</h3><div class="gemm">'
    + '<div class="note">Each window of the padded x, unrolled, is one column of cols'
    + ` (${C} channels x ${F} x ${F} = ${C * F * F} numbers); each filter, unrolled, is one row of W.`
    + ` Row ${k} times column ${l} is the dot product above: one number of Y.`
    + " One matrix multiply computes every output at once.</div>"
    + column(`cols = im2col(x): ${C * F * F} x ${L}, window ${l} is column ${l}`,
      grid("cols", 0, C * F * F, L, (a, b) => (b === l ? "win" : ""), (a, b) => fmt(D.cols[a][b]), true))
    + column(`W: ${K} x ${C * F * F}, filter ${k} is row ${k}`,
      grid("wmat", 0, K, C * F * F, (a) => (a === k ? "filt" : ""), (a, b) => fmt(wmat[a][b]), true))
    + column(`Y = W &middot; cols + b: ${K} x ${L}`,
      grid("ymat", 0, K, L, (a, b) => (a === k && b === l ? "cur" : ""),
        (a, b) => (a * L + b <= s ? fmt(D.y[a][Math.floor(b / Wo)][b % Wo]) : ""), true))
    + "</div>";
  return h;
}

function drawPool(s) {
  const [k, i, j] = poolStep(s), r0 = i * PS, c0 = j * PS, sw = D.switches[k][i][j];
  let ys = "", ps = "";
  for (let kk = 0; kk < K; kk++) {
    ys += cap(`y[${kk}]`) + grid("y", kk, Ho, Wo,
      (a, b) => [kk === k && inside(a, b, r0, c0, PF) ? "win" : "",
        kk === k && a === sw[0] && b === sw[1] ? "max" : ""].join(" "),
      (a, b) => fmt(D.y[kk][a][b]));
    ps += cap(`pooled[${kk}]`) + grid("pooled", kk, Po, Qo,
      (a, b) => (kk === k && a === i && b === j ? "cur" : ""),
      (a, b) => (kk * Po * Qo + a * Qo + b <= s ? fmt(D.pooled[kk][a][b]) : ""));
  }
  const cands = [];
  let best = -Infinity;
  for (let a = 0; a < PF; a++) for (let b = 0; b < PF; b++) {
    const v = D.y[k][r0 + a][c0 + b];
    best = Math.max(best, v);
    cands.push(`<span class="cand">${fmt(v)}</span>`);
  }
  const p = D.pooled[k][i][j];
  return '<div class="row">' + column(`Conv output y: ${K} x ${Ho} x ${Wo}`, ys)
    + column(`Max pool ${PF}x${PF}, stride ${PS}: ${K} x ${Po} x ${Qo}`, ps) + "</div>"
    + `<div class="readout" id="readout"><div>pooled${k}[${i}, ${j}] = max(${cands.join(", ")})`
    + ` = <span id="pool-max">${fmt(best)}</span>; cnnkit's: <span id="pool-cnnkit">${fmt(p)}</span>`
    + ` ${check(same(best, p))}</div><div>switch (where the max is, kept for backward):`
    + ` y${k}[<span id="pool-switch">${sw[0]}, ${sw[1]}</span>]`
    + " (the first maximum on a tie, as PyTorch)</div></div>";
}

function drawPoolBack(s) {
  const [k, i, j] = poolStep(s), sw = D.switches[k][i][j];
  const dy = zeros(K, Ho, Wo), touched = zeros(K, Ho, Wo);
  for (let t = 0; t <= s; t++) {
    const [kt, it, jt] = poolStep(t), w = D.switches[kt][it][jt];
    dy[kt][w[0]][w[1]] += D.grad[kt][it][jt];
    touched[kt][w[0]][w[1]] = 1;
  }
  let gs = "", ds = "";
  for (let kk = 0; kk < K; kk++) {
    gs += cap(`dpooled[${kk}]`) + grid("grad", kk, Po, Qo,
      (a, b) => (kk === k && a === i && b === j ? "cur" : ""), (a, b) => fmt(D.grad[kk][a][b]));
    ds += cap(`dy[${kk}]`) + grid("dy", kk, Ho, Wo,
      (a, b) => [touched[kk][a][b] ? "touched" : "",
        kk === k && a === sw[0] && b === sw[1] ? "max" : ""].join(" "),
      (a, b) => fmt(dy[kk][a][b]));
  }
  const last = s === PHASES[2].steps - 1;
  let ok = true;
  for (let kk = 0; kk < K; kk++) {
    for (let a = 0; a < Ho; a++) for (let b = 0; b < Wo; b++) ok = ok && same(dy[kk][a][b], D.dy[kk][a][b]);
  }
  return '<div class="row">' + column(`Gradient of the pooled output: ${K} x ${Po} x ${Qo}`, gs)
    + column(`Gradient of y, dy: ${K} x ${Ho} x ${Wo} (running sum)`, ds) + "</div>"
    + `<div class="readout" id="readout"><div>dpooled${k}[${i}, ${j}] =`
    + ` <span id="pb-g">${fmt(D.grad[k][i][j])}</span> goes to its window's switch:`
    + ` dy${k}[${sw[0]}, ${sw[1]}] += ${fmt(D.grad[k][i][j])}; every other input of the window gets nothing`
    + " (it did not change the max).</div>"
    + (last ? `<div id="pb-done">all windows done: dy ${check(ok)} (max_pool2d_backward)</div>` : "")
    + "</div>";
}

function drawConvBack(s) {
  const [k, i, j] = convStep(s), r0 = i * S, c0 = j * S, g = D.dy[k][i][j];
  const dxp = zeros(C, H + 2 * P, W + 2 * P), dw = D.weight.map(() => zeros(C, F, F));
  const db = new Array(K).fill(0);
  for (let t = 0; t <= s; t++) {
    const [kt, it, jt] = convStep(t), gt = D.dy[kt][it][jt];
    db[kt] += gt;
    for (let c = 0; c < C; c++) for (let a = 0; a < F; a++) for (let b = 0; b < F; b++) {
      dxp[c][it * S + a][jt * S + b] += gt * D.weight[kt][c][a][b];
      dw[kt][c][a][b] += gt * D.xp[c][it * S + a][jt * S + b];
    }
  }
  let dys = "", dxs = "", dws = "";
  for (let kk = 0; kk < K; kk++) {
    dys += cap(`dy[${kk}]`) + grid("dy", kk, Ho, Wo, (a, b) => (kk === k && a === i && b === j ? "cur" : ""),
      (a, b) => fmt(D.dy[kk][a][b]));
  }
  for (let c = 0; c < C; c++) {
    dxs += cap(`dx[${c}] (padded; the border's gradient is dropped)`) + grid("dx", c, H + 2 * P, W + 2 * P,
      (a, b) => [isPad(a, b) ? "pad" : "", inside(a, b, r0, c0, F) ? "win" : ""].join(" "),
      (a, b) => fmt(dxp[c][a][b]));
  }
  for (let kk = 0; kk < K; kk++) {
    let f = "";
    for (let c = 0; c < C; c++) {
      f += cap(`dW${kk}[${c}]`) + grid("dw", `${kk}-${c}`, F, F, () => (kk === k ? "filt" : ""),
        (a, b) => fmt(dw[kk][c][a][b]));
    }
    f += cap(`db${kk} = <span class="dbias" data-k="${kk}">${fmt(db[kk])}</span>`);
    dws += column(`dW${kk} (running sum)`, f);
  }
  const last = s === PHASES[3].steps - 1;
  let dxOk = true, dwOk = true, dbOk = true;
  for (let c = 0; c < C; c++) {
    for (let a = 0; a < H; a++) for (let b = 0; b < W; b++) {
      dxOk = dxOk && same(dxp[c][a + P][b + P], D.dx[c][a][b]);
    }
  }
  for (let kk = 0; kk < K; kk++) {
    dbOk = dbOk && same(db[kk], D.dbias[kk]);
    for (let c = 0; c < C; c++) for (let a = 0; a < F; a++) for (let b = 0; b < F; b++) {
      dwOk = dwOk && same(dw[kk][c][a][b], D.dweight[kk][c][a][b]);
    }
  }
  return '<div class="row">' + column(`dy: ${K} x ${Ho} x ${Wo}`, dys)
    + column(`dx: ${C} x ${H + 2 * P} x ${W + 2 * P} padded (running sum)`, dxs) + dws + "</div>"
    + `<div class="readout" id="readout"><div>dy${k}[${i}, ${j}] = <span id="cb-g">${fmt(g)}</span>`
    + " flows back through the window it came from"
    + ` (rows ${r0}..${r0 + F - 1}, columns ${c0}..${c0 + F - 1}):</div>`
    + `<div>dx[:, window] += ${fmt(g)} &times; W${k} &nbsp; dW${k} += ${fmt(g)} &times; x[:, window]`
    + ` &nbsp; db${k} += ${fmt(g)}</div>`
    + "<div>As matrices: dW = dy &middot; cols<sup>T</sup>, dx = col2im(W<sup>T</sup> &middot; dy):"
    + " the backward pass is a convolution too (with the filters flipped: a transposed convolution).</div>"
    + (last ? `<div id="cb-done">all windows done: dx ${check(dxOk)}, dW ${check(dwOk)}, db ${check(dbOk)}`
      + " (conv2d_backward)</div>" : "") + "</div>";
}

function render() {
  const ph = PHASES[state.phase];
  for (const selector of [".panel", "nav button"]) {
    document.querySelectorAll(selector).forEach((el, n) => el.classList.toggle("active", n === state.phase));
  }
  document.getElementById(`panel-${state.phase}`).innerHTML = ph.draw(state.step);
  document.getElementById("step-label").textContent = `${ph.title}: step ${state.step + 1} of ${ph.steps}`;
  document.body.dataset.phase = state.phase;
  document.body.dataset.step = state.step;
}
function go(phase, step) {
  state.phase = phase;
  state.step = step;
  render();
}
function next() {
  if (state.step + 1 < PHASES[state.phase].steps) go(state.phase, state.step + 1);
  else go((state.phase + 1) % PHASES.length, 0);
}
function prev() {
  if (state.step > 0) go(state.phase, state.step - 1);
  else { const p = (state.phase + PHASES.length - 1) % PHASES.length; go(p, PHASES[p].steps - 1); }
}
function play() {
  const button = document.getElementById("play");
  if (timer) { clearInterval(timer); timer = null; button.innerHTML = "&#9654; play"; return; }
  timer = setInterval(next, 900);
  button.innerHTML = "&#10074;&#10074; pause";
}

const rule = (n, f, p, s, o) => `(${n} - ${f} + 2&middot;${p}) / ${s} + 1 = ${o}`;
document.getElementById("geometry").innerHTML = "Output size (W - F + 2P) / S + 1:"
  + ` width ${rule(W, F, P, S, Wo)}, height ${rule(H, F, P, S, Ho)}; ${K} filters of ${C} x ${F} x ${F}`
  + ` weights + 1 bias = ${K * (C * F * F + 1)} parameters; then max pooling ${PF}x${PF} at stride ${PS}:`
  + ` ${Qo} x ${Po} x ${K}.`;
document.getElementById("phases").innerHTML = PHASES.map(
  (p, n) => `<button data-phase-button="${n}">${p.title}</button>`).join("");
document.querySelectorAll("nav button").forEach((el, n) => el.addEventListener("click", () => go(n, 0)));
document.getElementById("prev").addEventListener("click", prev);
document.getElementById("next").addEventListener("click", next);
document.getElementById("play").addEventListener("click", play);
document.addEventListener("keydown", (e) => {
  if (e.key === "ArrowRight") next();
  else if (e.key === "ArrowLeft") prev();
  else if (e.key === " ") { e.preventDefault(); play(); }
});
window.cnnkitDemo = {phases: PHASES.map((p) => ({title: p.title, steps: p.steps})), go, next, prev, play};
render();
</script>
</body>
</html>
"""
