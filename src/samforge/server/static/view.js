// One canvas showing one plane of the image with the label overlay: window/level, zoom, pan,
// flips, and the mapping between screen and image pixels (x = column, y = row).

export function hexColour(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

export class PlaneView {
  constructor(canvas, aspect = 1) {
    this.canvas = canvas;
    this.aspect = aspect; // physical height / width of one pixel
    this.flips = [false, false];
    this.zoom = 1;
    this.pan = [0, 0];
    this.plane = null; // {data, shape}
    this.labels = null;
    this.offscreen = document.createElement('canvas');
    this.overlays = []; // functions (ctx, view) drawing prompts on top
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  get size() { return this.plane ? [this.plane.shape[1], this.plane.shape[0]] : [1, 1]; }

  geometry() {
    const [w, h] = this.size;
    const cw = this.canvas.clientWidth, ch = this.canvas.clientHeight;
    const scale = Math.min(cw / w, ch / (h * this.aspect)) * this.zoom;
    const ox = (cw - w * scale) / 2 + this.pan[0];
    const oy = (ch - h * scale * this.aspect) / 2 + this.pan[1];
    return { w, h, scale, ox, oy };
  }

  imageToScreen(x, y) {
    const g = this.geometry();
    const fx = this.flips[1] ? g.w - x : x, fy = this.flips[0] ? g.h - y : y;
    return [g.ox + fx * g.scale, g.oy + fy * g.scale * this.aspect];
  }

  screenToImage(sx, sy) {
    const g = this.geometry();
    const fx = (sx - g.ox) / g.scale, fy = (sy - g.oy) / (g.scale * this.aspect);
    return [this.flips[1] ? g.w - fx : fx, this.flips[0] ? g.h - fy : fy];
  }

  eventToImage(event) {
    const rect = this.canvas.getBoundingClientRect();
    return this.screenToImage(event.clientX - rect.left, event.clientY - rect.top);
  }

  render(window, colours) {
    if (!this.plane) return;
    const [w, h] = this.size;
    this.offscreen.width = w; this.offscreen.height = h;
    const ctx = this.offscreen.getContext('2d');
    const image = ctx.createImageData(w, h);
    const out = image.data, src = this.plane.data, rgb = this.plane.shape.length === 3;
    const low = window[0] - window[1] / 2, factor = 255 / Math.max(window[1], 1e-6);
    const labels = this.labels ? this.labels.data : null;
    for (let i = 0; i < w * h; i++) {
      let r, g, b;
      if (rgb) { r = src[3 * i]; g = src[3 * i + 1]; b = src[3 * i + 2]; } else {
        const v = Math.max(0, Math.min(255, (src[i] - low) * factor));
        r = g = b = v;
      }
      const label = labels ? labels[i] : 0;
      if (label && colours[label]) {
        const c = colours[label];
        r = 0.45 * r + 0.55 * c[0]; g = 0.45 * g + 0.55 * c[1]; b = 0.45 * b + 0.55 * c[2];
      }
      out[4 * i] = r; out[4 * i + 1] = g; out[4 * i + 2] = b; out[4 * i + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
    this.draw();
  }

  draw() {
    const canvas = this.canvas, ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(canvas.clientWidth * ratio);
    canvas.height = Math.round(canvas.clientHeight * ratio);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.clientWidth, canvas.clientHeight);
    if (!this.plane) return;
    const g = this.geometry();
    ctx.save();
    ctx.translate(g.ox, g.oy);
    ctx.scale(g.scale * (this.flips[1] ? -1 : 1), g.scale * this.aspect * (this.flips[0] ? -1 : 1));
    ctx.translate(this.flips[1] ? -g.w : 0, this.flips[0] ? -g.h : 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.offscreen, 0, 0);
    ctx.restore();
    for (const overlay of this.overlays) overlay(ctx, this);
  }

  zoomAt(factor, sx, sy) {
    // keep the point under the cursor in place
    const g = this.geometry();
    const ix = (sx - g.ox) / g.scale, iy = (sy - g.oy) / g.scale;
    this.zoom = Math.max(0.2, Math.min(40, this.zoom * factor));
    const n = this.geometry();
    this.pan[0] += sx - (n.ox + ix * n.scale);
    this.pan[1] += sy - (n.oy + iy * n.scale);
    this.draw();
  }

  reset() { this.zoom = 1; this.pan = [0, 0]; this.draw(); }
}
