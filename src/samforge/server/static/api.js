// Calls to the annotator's API. JSON errors come back as {"error": message}; pixel replies
// are raw little-endian arrays whose shape is in the X-Shape header.

const DTYPES = { float32: Float32Array, uint16: Uint16Array, uint8: Uint8Array };

export class ApiError extends Error {}

async function checked(response) {
  if (response.ok) return response;
  let message = `${response.status} ${response.statusText}`;
  try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
  throw new ApiError(message);
}

export async function json(method, url, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(body);
  }
  return (await checked(await fetch(url, options))).json();
}

export async function pixels(method, url, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(body);
  }
  const response = await checked(await fetch(url, options));
  const shape = response.headers.get('X-Shape').split(',').map(Number);
  const Type = DTYPES[response.headers.get('X-Dtype')];
  const timing = /dur=([\d.]+)/.exec(response.headers.get('Server-Timing') || '');
  return {
    data: new Type(await response.arrayBuffer()), shape,
    version: Number(response.headers.get('X-Version')), serverMs: timing ? Number(timing[1]) : null,
  };
}

export async function upload(files) {
  const form = new FormData();
  for (const file of files) form.append('files', file, file.name);
  return (await checked(await fetch('/api/uploads', { method: 'POST', body: form }))).json();
}
