// Pointer and keyboard input: box drag, positive/negative clicks, brush/eraser strokes, pan,
// zoom, window drag, slice scrolling, and the shortcuts shown on the buttons.
import { json, pixels } from './api.js';
import {
  addObject, applyDocument, guarded, moveCross, objectUrl, patchObject, propagate, save, selectedObject,
  refreshLabels, setStatus, setWindow, showLabels, slicePrompts, state, step, views,
} from './app.js';

const $ = (id) => document.getElementById(id);
const CLICK_PIXELS = 4; // a drag shorter than this is a click
let drag = null; // {kind, start: [sx, sy], image: [x, y], last, stroke}

export function setTool(tool) {
  state.tool = tool;
  for (const button of document.querySelectorAll('#tools button')) {
    button.classList.toggle('active', button.dataset.tool === tool);
  }
}

async function sendPrompts(prompts) {
  if (!state.doc) return;
  if (state.selected === null) await addObject();
  const index = state.cross[0];
  const started = performance.now();
  const labels = await guarded(() => pixels('PUT', objectUrl(`/prompts/${index}`), prompts));
  if (!labels) return;
  const object = selectedObject();
  if (object) object.prompts[String(index)] = prompts; // until the document reloads
  showLabels(labels);
  const total = performance.now() - started;
  setStatus(`mask in ${Math.round(total)} ms (server ${Math.round(labels.serverMs)} ms)`);
  document.body.dataset.lastClickMs = String(total);
  document.body.dataset.clicks = String(Number(document.body.dataset.clicks || 0) + 1);
}

async function sendStroke(stroke, erase) {
  if (state.selected === null) await addObject();
  const body = { index: state.cross[0], stroke, radius: Number($('radius').value), erase };
  const labels = await guarded(() => pixels('POST', objectUrl('/paint'), body));
  if (labels) showLabels(labels);
}

function inside([x, y]) {
  const [w, h] = views[0].size;
  return x >= 0 && y >= 0 && x < w && y < h;
}

function clamp([x, y]) {
  const [w, h] = views[0].size;
  return [Math.max(0, Math.min(w, x)), Math.max(0, Math.min(h, y))];
}

function onDown(event) {
  if (!state.doc) return;
  views[0].canvas.focus();
  const image = views[0].eventToImage(event);
  let kind = state.tool;
  if (event.altKey) kind = 'window';
  else if (event.button === 1 || event.button === 2 && kind === 'pan') kind = 'pan';
  drag = { kind, start: [event.clientX, event.clientY], image, last: [event.clientX, event.clientY],
    stroke: [image], window: [...state.window], negative: event.button === 2 || event.shiftKey };
  views[0].canvas.setPointerCapture(event.pointerId);
  event.preventDefault();
}

function onMove(event) {
  if (!drag) { if (['brush', 'eraser'].includes(state.tool)) views[0].draw(); return; }
  const dx = event.clientX - drag.last[0], dy = event.clientY - drag.last[1];
  drag.last = [event.clientX, event.clientY];
  if (drag.kind === 'pan') { views[0].pan[0] += dx; views[0].pan[1] += dy; views[0].draw(); }
  if (drag.kind === 'window') {
    const scale = drag.window[1] / 300;
    setWindow([state.window[0] - dy * scale, state.window[1] + dx * scale]);
  }
  if (drag.kind === 'brush' || drag.kind === 'eraser') drag.stroke.push(views[0].eventToImage(event));
  views[0].draw();
}

function onUp(event) {
  if (!drag) return;
  const current = drag;
  drag = null;
  const moved = Math.hypot(event.clientX - current.start[0], event.clientY - current.start[1]);
  const end = views[0].eventToImage(event);
  const prompts = slicePrompts();
  if (current.kind === 'box' && moved >= CLICK_PIXELS) {
    const [x0, y0] = clamp(current.image), [x1, y1] = clamp(end);
    prompts.box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
    sendPrompts(prompts);
  } else if (['box', 'pos', 'neg'].includes(current.kind) && moved < CLICK_PIXELS && inside(end)) {
    const negative = current.kind === 'neg' || current.negative;
    prompts.points.push([end[0], end[1], negative ? 0 : 1]);
    sendPrompts(prompts);
  } else if (current.kind === 'brush' || current.kind === 'eraser') {
    sendStroke(current.stroke, current.kind === 'eraser');
  } else if (current.kind === 'pan' && moved < CLICK_PIXELS && inside(end)) {
    state.cross[1] = Math.round(end[1]); state.cross[2] = Math.round(end[0]);
    moveCross(0, state.cross[0]);
  }
  views[0].draw();
}

/** The selected object's prompts on this slice, the box being dragged, the brush. */
function drawPrompts(ctx, view) {
  const prompts = slicePrompts();
  const box = drag && drag.kind === 'box' ? [...drag.image, ...view.eventToImage({ clientX: drag.last[0], clientY: drag.last[1] })] : prompts.box;
  ctx.lineWidth = 1.5;
  if (box) {
    const [a, b] = [view.imageToScreen(box[0], box[1]), view.imageToScreen(box[2], box[3])];
    ctx.strokeStyle = '#ffd54f';
    ctx.strokeRect(Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.abs(b[0] - a[0]), Math.abs(b[1] - a[1]));
  }
  for (const [x, y, label] of prompts.points) {
    const [sx, sy] = view.imageToScreen(x, y);
    ctx.fillStyle = label ? '#4caf50' : '#f44336';
    ctx.beginPath(); ctx.arc(sx, sy, 4, 0, 2 * Math.PI); ctx.fill();
    ctx.strokeStyle = '#fff'; ctx.stroke();
  }
  if (drag && (drag.kind === 'brush' || drag.kind === 'eraser')) {
    const radius = Number($('radius').value) * view.geometry().scale;
    ctx.fillStyle = drag.kind === 'brush' ? 'rgba(255,255,255,.35)' : 'rgba(0,0,0,.45)';
    for (const [x, y] of drag.stroke) {
      const [sx, sy] = view.imageToScreen(x, y);
      ctx.beginPath(); ctx.arc(sx, sy, radius, 0, 2 * Math.PI); ctx.fill();
    }
  }
}

/** Where the other two views cut this one. */
function drawCross(axis) {
  return (ctx, view) => {
    if (!state.doc || !state.doc.is_volume) return;
    const [z, y, x] = state.cross;
    const [column, row] = { 0: [x, y], 1: [x, z], 2: [y, z] }[axis];
    const [w, h] = view.size;
    ctx.strokeStyle = 'rgba(80, 200, 255, .5)'; ctx.lineWidth = 1;
    const [a, b] = [view.imageToScreen(column + 0.5, 0), view.imageToScreen(column + 0.5, h)];
    const [c, d] = [view.imageToScreen(0, row + 0.5), view.imageToScreen(w, row + 0.5)];
    ctx.beginPath(); ctx.moveTo(...a); ctx.lineTo(...b); ctx.moveTo(...c); ctx.lineTo(...d); ctx.stroke();
  };
}

function onWheel(axis) {
  return (event) => {
    if (!state.doc) return;
    event.preventDefault();
    const view = views[axis];
    if (event.ctrlKey || axis > 0) {
      const rect = view.canvas.getBoundingClientRect();
      view.zoomAt(event.deltaY < 0 ? 1.15 : 1 / 1.15, event.clientX - rect.left, event.clientY - rect.top);
    } else {
      moveCross(0, state.cross[0] + Math.sign(event.deltaY));
    }
  };
}

function sideViewClick(axis) {
  return (event) => {
    if (!state.doc || !state.doc.is_volume) return;
    const [column, row] = views[axis].eventToImage(event);
    state.cross[axis === 1 ? 2 : 1] = Math.round(column);
    moveCross(0, row);
  };
}

const SHORTCUTS = {
  b: () => setTool('box'), p: () => setTool('pos'), n: () => setTool('neg'),
  r: () => setTool('brush'), e: () => setTool('eraser'), h: () => setTool('pan'),
  o: () => addObject(), g: () => propagate(), 0: () => views.forEach((v) => v.reset()),
  a: () => state.selected !== null && patchObject(state.selected, { status: 'accepted' }),
  x: () => rejectSelected(),
  ArrowUp: () => moveCross(0, state.cross[0] + 1), ArrowDown: () => moveCross(0, state.cross[0] - 1),
  PageUp: () => moveCross(0, state.cross[0] + 10), PageDown: () => moveCross(0, state.cross[0] - 10),
};

async function rejectSelected() {
  if (state.selected === null || !state.doc) return;
  await guarded(async () => {
    await applyDocument(await json('DELETE', objectUrl()));
    await refreshLabels();
  });
}

function onKey(event) {
  if (event.target.tagName === 'INPUT' || event.target.tagName === 'SELECT') return;
  const key = event.key;
  if ((event.ctrlKey || event.metaKey) && key.toLowerCase() === 'z') {
    event.preventDefault(); step(event.shiftKey ? 'redo' : 'undo');
  } else if ((event.ctrlKey || event.metaKey) && key.toLowerCase() === 'y') {
    event.preventDefault(); step('redo');
  } else if ((event.ctrlKey || event.metaKey) && key.toLowerCase() === 's') {
    event.preventDefault(); save();
  } else if (!event.ctrlKey && !event.metaKey && !event.altKey && SHORTCUTS[key]) {
    event.preventDefault(); SHORTCUTS[key]();
  }
}

export function installTools() {
  const canvas = views[0].canvas;
  canvas.addEventListener('pointerdown', onDown);
  canvas.addEventListener('pointermove', onMove);
  canvas.addEventListener('pointerup', onUp);
  canvas.addEventListener('contextmenu', (event) => event.preventDefault());
  views[0].overlays.push(drawPrompts, drawCross(0));
  views.forEach((view, axis) => view.canvas.addEventListener('wheel', onWheel(axis), { passive: false }));
  for (const axis of [1, 2]) {
    views[axis].overlays.push(drawCross(axis));
    views[axis].canvas.addEventListener('click', sideViewClick(axis));
  }
  for (const button of document.querySelectorAll('#tools button')) {
    button.onclick = () => setTool(button.dataset.tool);
  }
  $('slice').oninput = () => moveCross(0, Number($('slice').value));
  $('undo').onclick = () => step('undo');
  $('redo').onclick = () => step('redo');
  $('add-object').onclick = () => addObject();
  $('accept').onclick = SHORTCUTS.a;
  $('reject').onclick = () => rejectSelected();
  $('propagate').onclick = () => propagate();
  $('save').onclick = () => save();
  document.addEventListener('keydown', onKey);
  setTool('box');
}
