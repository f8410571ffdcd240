// The annotator page: files, documents, the three views, objects, jobs. Pointer and keyboard
// input is in tools.js. All state lives on the server; the page only mirrors it, so a reload
// finds everything where it was.
import { ApiError, json, pixels, upload } from './api.js';
import { PlaneView, hexColour } from './view.js';
import { installTools } from './tools.js';

const $ = (id) => document.getElementById(id);

export const state = {
  info: null, doc: null, selected: null, tool: 'box',
  cross: [0, 0, 0], // (z, y, x): slice shown in view 0, row in view 1, column in view 2
  window: [0, 1], // (level, width)
  colours: {}, folder: '',
};
export const views = [0, 1, 2].map((axis) => new PlaneView($(`view${axis}`)));
window.samforgeViews = views; // for the browser console and the end-to-end tests

export function setStatus(text) { $('status').textContent = text; }

export async function guarded(work) {
  try { return await work(); } catch (error) {
    setStatus(error instanceof ApiError ? error.message : `error: ${error.message}`);
    if (!(error instanceof ApiError)) console.error(error);
    return undefined;
  }
}

const docUrl = (suffix = '') => `/api/documents/${state.doc.id}${suffix}`;
export const objectUrl = (suffix = '') => docUrl(`/objects/${state.selected}${suffix}`);
export function selectedObject() {
  return state.doc ? state.doc.objects.find((o) => o.id === state.selected) || null : null;
}
export function slicePrompts() {
  const object = selectedObject();
  const stored = object && object.prompts[String(state.cross[0])];
  return stored ? { box: stored.box, points: stored.points.map((p) => [...p]) } : { box: null, points: [] };
}

// --- documents -----------------------------------------------------------------------------

export async function applyDocument(doc) {
  const first = !state.doc || state.doc.id !== doc.id;
  state.doc = doc;
  state.colours = Object.fromEntries(doc.objects.map((o) => [o.id, hexColour(o.colour)]));
  if (!doc.objects.some((o) => o.id === state.selected)) {
    state.selected = doc.objects.length ? doc.objects[doc.objects.length - 1].id : null;
  }
  if (first) await showDocument();
  renderObjects();
  renderJobs();
  $('undo').disabled = !doc.can_undo;
  $('redo').disabled = !doc.can_redo;
  localStorage.setItem('samforge.document', doc.id);
}

async function showDocument() {
  const doc = state.doc;
  const [depth, height, width] = doc.is_volume ? doc.shape : [1, ...doc.shape.slice(0, 2)];
  const saved = JSON.parse(localStorage.getItem(`samforge.cross.${doc.id}`) || 'null');
  state.cross = saved || [Math.floor(depth / 2), Math.floor(height / 2), Math.floor(width / 2)];
  const [low, high] = doc.display.window;
  setWindow([(low + high) / 2, high - low]);
  const [dz, dy, dx] = doc.is_volume ? doc.spacing : [1, ...doc.spacing];
  views[0].aspect = dy / dx; views[1].aspect = dz / dx; views[2].aspect = dz / dy;
  views.forEach((view, axis) => { view.flips = doc.display.flips[axis]; view.reset(); });
  $('slice').max = depth - 1;
  document.body.classList.toggle('is-2d', !doc.is_volume);
  for (const axis of [1, 2]) views[axis].canvas.parentElement.classList.toggle('hidden', !doc.is_volume);
  for (const item of $('documents').children) item.classList.toggle('active', item.dataset.id === doc.id);
  await refreshAll();
}

export async function openDocument(request) {
  setStatus('opening…');
  const doc = await guarded(request);
  if (doc) { await applyDocument(doc); await listDocuments(); setStatus(''); }
}

export async function reloadDocument() {
  if (state.doc) await applyDocument(await json('GET', docUrl()));
}

async function listDocuments() {
  const docs = await json('GET', '/api/documents');
  const list = $('documents');
  list.replaceChildren(...docs.map((doc) => {
    const item = document.createElement('li');
    item.textContent = doc.name;
    item.dataset.id = doc.id;
    item.title = doc.source.path;
    item.classList.toggle('active', state.doc && doc.id === state.doc.id);
    item.onclick = () => guarded(async () => applyDocument(await json('GET', `/api/documents/${doc.id}`)));
    return item;
  }));
  return docs;
}

async function listFiles(folder) {
  const reply = await guarded(() => json('GET', `/api/files?path=${encodeURIComponent(folder)}`));
  if (!reply) return;
  state.folder = folder;
  const parts = folder ? folder.split('/') : [];
  const crumbs = [['data', '']].concat(parts.map((p, i) => [p, parts.slice(0, i + 1).join('/')]));
  $('crumbs').replaceChildren(...crumbs.map(([name, path]) => {
    const link = document.createElement('button');
    link.textContent = name + ' /';
    link.onclick = () => listFiles(path);
    return link;
  }));
  $('files').replaceChildren(...reply.entries.map((entry) => {
    const item = document.createElement('li');
    item.textContent = `${entry.kind === 'folder' ? '▸ ' : ''}${entry.name}${entry.kind === 'series' ? ' (DICOM)' : ''}`;
    item.dataset.path = entry.path;
    item.onclick = entry.kind === 'folder' ? () => listFiles(entry.path)
      : () => openDocument(() => json('POST', '/api/documents', { path: entry.path }));
    return item;
  }));
}

// --- pixels --------------------------------------------------------------------------------

export function setWindow([level, width]) {
  state.window = [level, Math.max(width, 1e-3)];
  $('level').value = +level.toFixed(1); $('width').value = +state.window[1].toFixed(1);
  views.forEach((view) => view.render(state.window, state.colours));
}

async function loadPlane(axis) {
  if (!state.doc || (axis > 0 && !state.doc.is_volume)) return;
  const index = state.cross[axis];
  const query = `?axis=${axis}&index=${index}`;
  const [plane, labels] = await Promise.all([pixels('GET', docUrl(`/plane${query}`)), pixels('GET', docUrl(`/labels${query}`))]);
  if (state.cross[axis] !== index) return; // the user moved on meanwhile
  views[axis].plane = plane; views[axis].labels = labels;
  views[axis].render(state.window, state.colours);
}

export async function refreshAll() {
  $('slice').value = state.cross[0];
  $('slice-label').textContent = state.doc.is_volume ? `slice ${state.cross[0] + 1} / ${state.doc.shape[0]}` : '';
  localStorage.setItem(`samforge.cross.${state.doc.id}`, JSON.stringify(state.cross));
  await guarded(() => Promise.all([0, 1, 2].map(loadPlane)));
}

export async function refreshLabels(axes = [0, 1, 2]) {
  if (!state.doc) return;
  await guarded(() => Promise.all(axes.filter((a) => a === 0 || state.doc.is_volume).map(async (axis) => {
    views[axis].labels = await pixels('GET', docUrl(`/labels?axis=${axis}&index=${state.cross[axis]}`));
    views[axis].render(state.window, state.colours);
  })));
}

/** Show the label plane a click or stroke returned at once; the side views follow. */
export function showLabels(labels) {
  views[0].labels = labels;
  views[0].render(state.window, state.colours);
  refreshLabels([1, 2]);
  reloadDocument();
}

export async function moveCross(axis, value) {
  const limit = state.doc.is_volume ? state.doc.shape[axis] : 1;
  state.cross[axis] = Math.max(0, Math.min(limit - 1, Math.round(value)));
  await refreshAll();
}

// --- objects and jobs ----------------------------------------------------------------------

function renderObjects() {
  $('objects').replaceChildren(...state.doc.objects.map((object) => {
    const item = document.createElement('li');
    item.dataset.id = object.id;
    item.classList.toggle('active', object.id === state.selected);
    const swatch = document.createElement('input');
    swatch.type = 'color'; swatch.value = object.colour; swatch.className = 'swatch';
    swatch.onchange = () => patchObject(object.id, { colour: swatch.value });
    const name = document.createElement('input');
    name.className = 'name'; name.value = object.name;
    name.onchange = () => patchObject(object.id, { name: name.value });
    const badge = document.createElement('span');
    badge.className = `badge ${object.status}`; badge.textContent = object.status;
    item.append(swatch, name, badge);
    item.onclick = () => { state.selected = object.id; renderObjects(); };
    return item;
  }));
}

export async function patchObject(id, changes) {
  await guarded(async () => applyDocument(await json('PATCH', docUrl(`/objects/${id}`), changes)));
  views.forEach((view) => view.render(state.window, state.colours));
}

export async function addObject() {
  const doc = await guarded(() => json('POST', docUrl('/objects'), {}));
  if (doc) { state.selected = doc.objects[doc.objects.length - 1].id; await applyDocument(doc); }
}

const polling = new Set();
function renderJobs() {
  for (const job of state.doc.jobs) {
    const bar = job.kind === 'embed' ? $('embed') : $('propagation');
    showProgress(bar, job);
    if (!['done', 'failed', 'cancelled'].includes(job.state) && !polling.has(job.id)) poll(job, bar);
  }
}

function showProgress(bar, job) {
  bar.classList.remove('hidden');
  bar.querySelector('.bar').style.width = `${(100 * job.done) / Math.max(job.total, 1)}%`;
  const label = job.kind === 'embed' ? 'embedding' : 'propagating';
  bar.querySelector('.text').textContent = job.state === 'running' || job.state === 'queued'
    ? `${label} ${job.done}/${job.total}` : `${label}: ${job.state}${job.error ? ' – ' + job.error : ''}`;
  bar.dataset.state = job.state;
}

async function poll(job, bar) {
  polling.add(job.id);
  try {
    for (;;) {
      const now = await json('GET', `/api/jobs/${job.id}`);
      showProgress(bar, now);
      if (['done', 'failed', 'cancelled'].includes(now.state)) {
        if (now.kind === 'propagate') { await reloadDocument(); await refreshLabels(); }
        if (now.state === 'failed') setStatus(now.error);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  } catch (error) { setStatus(error.message); } finally { polling.delete(job.id); }
}

export async function propagate() {
  if (!state.doc || state.selected === null) return;
  const body = { mode: $('mode').value, iou_threshold: Number($('iou').value) };
  const job = await guarded(() => json('POST', objectUrl('/propagate'), body));
  if (job) poll(job, $('propagation'));
}

export async function step(which) {
  const doc = await guarded(() => json('POST', docUrl(`/${which}`)));
  if (doc) { await applyDocument(doc); await refreshLabels(); }
}

export async function save() {
  const saved = await guarded(() => json('POST', docUrl('/save')));
  if (!saved) return;
  const links = saved.downloads.map((url) => {
    const link = document.createElement('a');
    link.href = url; link.textContent = url.endsWith('labels') ? 'labels' : 'prompts.json';
    link.download = '';
    return link;
  });
  const note = document.createElement('p');
  note.textContent = `${saved.objects} accepted object(s) saved to ${saved.labels}`;
  $('saved').replaceChildren(note, ...links);
}

// --- start ---------------------------------------------------------------------------------

async function start() {
  state.info = await json('GET', '/api/info');
  $('model').replaceChildren(...state.info.models.map((m) => {
    const option = new Option(`${m.name}${m.local ? '' : ' (download)'}`, m.name);
    option.title = m.info; return option;
  }));
  $('model').value = state.info.model;
  $('model').onchange = () => guarded(async () => {
    setStatus(`loading ${$('model').value}…`);
    await json('PUT', '/api/model', { name: $('model').value });
    setStatus(''); await reloadDocument();
  });
  const presets = { 'as opened': null, ...state.info.windows };
  $('preset').replaceChildren(...Object.keys(presets).map((name) => new Option(name, name)));
  $('preset').onchange = () => {
    const preset = presets[$('preset').value];
    const [low, high] = state.doc ? state.doc.display.window : [0, 1];
    setWindow(preset || [(low + high) / 2, high - low]);
  };
  for (const id of ['level', 'width']) $(id).onchange = () => setWindow([Number($('level').value), Number($('width').value)]);
  $('mode').replaceChildren(...state.info.propagation_modes.map((m) => new Option(m, m)));
  $('mode').value = 'mask';
  $('upload').onchange = () => openDocument(() => upload($('upload').files));
  installTools();
  await listFiles('');
  const docs = await listDocuments();
  const last = localStorage.getItem('samforge.document');
  const chosen = docs.find((doc) => doc.id === last) || docs[docs.length - 1];
  if (chosen) await applyDocument(chosen);
  document.body.dataset.ready = 'true';
}

start();
