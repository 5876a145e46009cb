/* squareseq's training replay viewer: hidden states per epoch and step, over the classifier's map,
 * with the loss curves; no dependency, no network. The data: squareseq.figures.viewer_data.
 *
 *   var viewer = SquareseqViewer.create(rootElement, payload);
 *   viewer.addEpoch(record);   // appends one epoch; shows it when the viewer follows the last one
 *   viewer.seek(epoch); viewer.play(); viewer.pause(); viewer.selectStep(k); viewer.select(i);
 *
 * The root element's data attributes say what is drawn: data-epoch, data-step (1-based),
 * data-selected (a sequence's index, or ""), data-playing ("true"/"false").
 */
(function (global) {
  "use strict";

  var RDBU = [[103, 0, 31], [178, 24, 43], [214, 96, 77], [244, 165, 130], [253, 219, 199], [247, 247, 247],
              [209, 229, 240], [146, 197, 222], [67, 147, 195], [33, 102, 172], [5, 48, 97]];
  var MISSING = -32768;

  function el(tag, attrs, parent) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k]; else node.setAttribute(k, attrs[k]);
    });
    if (parent) parent.appendChild(node);
    return node;
  }

  function bytes(b64) {
    var raw = atob(b64 || ""), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function int16s(b64) {
    var b = bytes(b64), view = new DataView(b.buffer), out = new Int16Array(b.length >> 1);
    for (var i = 0; i < out.length; i++) out[i] = view.getInt16(2 * i, true);
    return out;
  }

  function rgbOf(hex) {
    return [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16)];
  }

  /* RdBu at p in [0, 1], faded towards white like the figures' maps (alpha 0.55). */
  function rdbu(p) {
    var x = Math.min(1, Math.max(0, p)) * (RDBU.length - 1), i = Math.min(RDBU.length - 2, Math.floor(x)), f = x - i;
    return [0, 1, 2].map(function (c) {
      var v = RDBU[i][c] + f * (RDBU[i + 1][c] - RDBU[i][c]);
      return Math.round(255 - 0.55 * (255 - v));
    });
  }

  function niceTicks(lo, hi) {
    var span = hi - lo, step = Math.pow(10, Math.floor(Math.log10(span / 4)));
    if (span / step > 10) step *= 5; else if (span / step > 5) step *= 2;
    var ticks = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) ticks.push(Math.round(t / step) * step);
    return ticks;
  }

  function fmt(v) { return (Math.abs(v) < 1e-9 ? 0 : v).toFixed(Math.abs(v) >= 10 ? 0 : 1); }

  function Viewer(root, payload) {
    this.root = root;
    this.meta = payload.meta;
    this.seqs = payload.sequences;
    this.epochs = [];
    this.decoded = [];
    this.losses = {train: (payload.losses && payload.losses.train || []).slice(),
                   val: (payload.losses && payload.losses.val || []).slice()};
    this.index = 0;
    this.step = this.meta.steps.length - 1;
    this.selected = null;
    this.hovered = null;
    this.timer = null;
    this.colors = this.meta.colors.map(rgbOf);
    this.build();
    (payload.epochs || []).forEach(function (rec) { this.push(rec); }, this);
    this.slider.max = String(Math.max(0, this.epochs.length - 1));
    this.show(Math.max(0, this.epochs.length - 1));
  }

  Viewer.prototype.build = function () {
    var root = this.root, meta = this.meta, self = this;
    root.classList.add("sqv");
    root.textContent = "";
    var bar = el("div", {"class": "sqv-controls"}, root);
    this.playButton = el("button", {"type": "button", "class": "sqv-play", "aria-pressed": "false",
                                    "text": "\u25b6 Play"}, bar);
    var label = el("label", {"class": "sqv-slider"}, bar);
    el("span", {"text": "Epoch "}, label);
    this.slider = el("input", {"type": "range", "min": "0", "max": "0", "step": "1", "value": "0",
                               "class": "sqv-epoch", "aria-label": "Epoch"}, label);
    this.readout = el("output", {"class": "sqv-readout", "aria-live": "off"}, bar);
    var stepLabel = el("label", {"class": "sqv-steplabel"}, bar);
    el("span", {"text": "Hidden state after step "}, stepLabel);
    this.stepSelect = el("select", {"class": "sqv-step", "aria-label": "Hidden state after step"}, stepLabel);
    meta.steps.forEach(function (s, k) { el("option", {"value": String(k), "text": String(s)}, self.stepSelect); });
    this.stepSelect.value = String(this.step);
    var legend = el("div", {"class": "sqv-legend"}, root);
    meta.classes.forEach(function (name, k) {
      var item = el("span", {"class": "sqv-key"}, legend);
      el("span", {"class": "sqv-swatch", "style": "background:" + meta.colors[k]}, item);
      item.appendChild(document.createTextNode(name));
    });
    if (meta.binary) el("span", {"class": "sqv-key", "text": "background: P(" + meta.classes[1] + "), dashed: 0.5"}, legend);
    var panels = el("div", {"class": "sqv-panels"}, root);
    this.plane = el("canvas", {"class": "sqv-plane", "tabindex": "0", "role": "img",
                               "aria-label": "Hidden states on the plane over the classifier's map; hover or "
                               + "click a sequence, arrow keys choose one"}, panels);
    var side = el("div", {"class": "sqv-side"}, panels);
    this.lossCanvas = el("canvas", {"class": "sqv-loss", "role": "img",
                                    "aria-label": "Training and validation loss per epoch"}, side);
    this.info = el("div", {"class": "sqv-info", "aria-live": "polite"}, side);
    this.inputCanvas = el("canvas", {"class": "sqv-input", "role": "img",
                                     "aria-label": "The chosen sequence's input points"}, side);
    if (meta.projection) el("p", {"class": "sqv-note", "text": meta.projection}, root);
    this.size(this.plane, 440, 440);
    this.size(this.lossCanvas, 380, 210);
    this.size(this.inputCanvas, 180, 180);
    this.playButton.addEventListener("click", function () { if (self.timer) self.pause(); else self.play(); });
    this.slider.addEventListener("input", function () { self.pause(); self.show(Number(self.slider.value)); });
    this.stepSelect.addEventListener("change", function () { self.selectStep(Number(self.stepSelect.value)); });
    this.plane.addEventListener("mousemove", function (ev) { self.hover(self.nearest(ev)); });
    this.plane.addEventListener("mouseleave", function () { self.hover(null); });
    this.plane.addEventListener("click", function (ev) { self.select(self.nearest(ev)); });
    this.plane.addEventListener("keydown", function (ev) { self.key(ev); });
  };

  Viewer.prototype.size = function (canvas, w, h) {
    var r = global.devicePixelRatio || 1;
    canvas.width = Math.round(w * r);
    canvas.height = Math.round(h * r);
    canvas.style.width = w + "px";
    canvas.style.aspectRatio = w + " / " + h;
    canvas.dataset.w = w;
    canvas.dataset.h = h;
  };

  Viewer.prototype.ctx = function (canvas) {
    var ctx = canvas.getContext("2d"), r = canvas.width / Number(canvas.dataset.w);
    ctx.setTransform(r, 0, 0, r, 0, 0);
    ctx.clearRect(0, 0, Number(canvas.dataset.w), Number(canvas.dataset.h));
    return ctx;
  };

  Viewer.prototype.push = function (rec) {
    this.epochs.push(rec);
    this.decoded.push(null);
    if (rec.epoch >= 1) {
      if (rec.train_loss !== undefined && rec.train_loss !== null) this.losses.train[rec.epoch - 1] = rec.train_loss;
      if (rec.val_loss !== undefined && rec.val_loss !== null) this.losses.val[rec.epoch - 1] = rec.val_loss;
    }
  };

  Viewer.prototype.addEpoch = function (rec) {
    var following = this.index >= this.epochs.length - 1;
    this.push(rec);
    this.slider.max = String(this.epochs.length - 1);
    if (following) this.show(this.epochs.length - 1); else this.drawLoss();
    return this;
  };

  Viewer.prototype.data = function (i) {
    if (!this.decoded[i]) {
      var rec = this.epochs[i];
      this.decoded[i] = {hidden: int16s(rec.hidden), probs: bytes(rec.probs), grid: bytes(rec.grid), map: null};
    }
    return this.decoded[i];
  };

  Viewer.prototype.seek = function (epoch) {
    var best = 0;
    for (var i = 0; i < this.epochs.length; i++) if (this.epochs[i].epoch <= epoch) best = i;
    this.pause();
    this.show(best);
    return this;
  };

  Viewer.prototype.play = function () {
    var self = this;
    if (this.timer || this.epochs.length < 2) return this;
    if (this.index >= this.epochs.length - 1) this.show(0);
    this.timer = global.setInterval(function () {
      if (self.index >= self.epochs.length - 1) { self.pause(); return; }
      self.show(self.index + 1);
    }, 100);
    this.playButton.textContent = "\u275a\u275a Pause";
    this.playButton.setAttribute("aria-pressed", "true");
    this.root.dataset.playing = "true";
    return this;
  };

  Viewer.prototype.pause = function () {
    if (this.timer) global.clearInterval(this.timer);
    this.timer = null;
    this.playButton.textContent = "\u25b6 Play";
    this.playButton.setAttribute("aria-pressed", "false");
    this.root.dataset.playing = "false";
    return this;
  };

  Viewer.prototype.selectStep = function (k) {
    this.step = Math.max(0, Math.min(this.meta.steps.length - 1, k));
    this.stepSelect.value = String(this.step);
    this.draw();
    return this;
  };

  Viewer.prototype.select = function (i) {
    this.selected = (i === null || i === undefined || i < 0 || i >= this.seqs.n) ? null : i;
    this.draw();
    return this;
  };

  Viewer.prototype.hover = function (i) {
    if (i === this.hovered) return;
    this.hovered = i;
    this.draw();
  };

  Viewer.prototype.key = function (ev) {
    var n = this.seqs.n, cur = this.selected === null ? -1 : this.selected;
    if (ev.key === "ArrowRight" || ev.key === "ArrowDown") this.select((cur + 1) % n);
    else if (ev.key === "ArrowLeft" || ev.key === "ArrowUp") this.select((cur - 1 + n) % n);
    else if (ev.key === "Escape") this.select(null);
    else return;
    ev.preventDefault();
  };

  Viewer.prototype.show = function (i) {
    if (!this.epochs.length) { this.draw(); return; }
    this.index = Math.max(0, Math.min(this.epochs.length - 1, i));
    this.slider.value = String(this.index);
    this.draw();
  };

  Viewer.prototype.draw = function () {
    var rec = this.epochs[this.index], epoch = rec ? rec.epoch : "";
    var text = rec ? "epoch " + epoch + " of " + Math.max(this.meta.n_epochs, this.losses.train.length) : "no epoch yet";
    this.readout.textContent = text;
    this.slider.setAttribute("aria-valuetext", text);
    this.root.dataset.epoch = String(epoch);
    this.root.dataset.step = String(this.meta.steps[this.step]);
    this.root.dataset.selected = this.selected === null ? "" : String(this.selected);
    this.drawPlane();
    this.drawLoss();
    this.drawInfo();
  };

  /* The plane's frame: a square plot box inside the canvas, and the data-to-pixel maps. */
  Viewer.prototype.frame = function () {
    var W = Number(this.plane.dataset.w), H = Number(this.plane.dataset.h), m = {l: 42, r: 10, t: 26, b: 34};
    var xl = this.meta.xlim, yl = this.meta.ylim, w = W - m.l - m.r, h = H - m.t - m.b;
    return {m: m, w: w, h: h,
            x: function (v) { return m.l + (v - xl[0]) / (xl[1] - xl[0]) * w; },
            y: function (v) { return m.t + (yl[1] - v) / (yl[1] - yl[0]) * h; }};
  };

  Viewer.prototype.point = function (d, rec, i, k) {
    var j = 2 * (i * this.meta.steps.length + k), qx = d.hidden[j], qy = d.hidden[j + 1];
    return qx === MISSING ? null : [qx * rec.scale, qy * rec.scale];
  };

  Viewer.prototype.mapImage = function (d) {
    if (d.map) return d.map;
    var g = this.meta.grid, canvas = document.createElement("canvas"), k = this.meta.binary ? 1 : this.colors.length;
    canvas.width = g; canvas.height = g;
    var ctx = canvas.getContext("2d"), img = ctx.createImageData(g, g);
    for (var r = 0; r < g; r++) {
      for (var c = 0; c < g; c++) {
        var src = ((g - 1 - r) * g + c) * k, rgb;
        if (k === 1) {
          rgb = rdbu(d.grid[src] / 255);
        } else {
          var top = 0;
          for (var q = 1; q < k; q++) if (d.grid[src + q] > d.grid[src + top]) top = q;
          var conf = Math.max(0, Math.min(1, (d.grid[src + top] / 255 - 1 / k) / (1 - 1 / k)));
          var s = 0.15 + 0.6 * conf, col = this.colors[top];
          rgb = col.map(function (v) { return Math.round(255 - s * (255 - v)); });
        }
        var o = 4 * (r * g + c);
        img.data[o] = rgb[0]; img.data[o + 1] = rgb[1]; img.data[o + 2] = rgb[2]; img.data[o + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    d.map = canvas;
    return canvas;
  };

  Viewer.prototype.drawPlane = function () {
    var ctx = this.ctx(this.plane), f = this.frame(), meta = this.meta, self = this;
    ctx.font = "12px system-ui, sans-serif";
    if (!this.epochs.length) { ctx.fillText("waiting for the first epoch\u2026", f.m.l, f.m.t + 20); return; }
    var rec = this.epochs[this.index], d = this.data(this.index), k = this.step;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(this.mapImage(d), f.m.l, f.m.t, f.w, f.h);
    ctx.save();
    ctx.beginPath(); ctx.rect(f.m.l, f.m.t, f.w, f.h); ctx.clip();
    if (rec.line) {
      ctx.setLineDash([6, 4]); ctx.strokeStyle = "#000"; ctx.lineWidth = 1.3;
      ctx.beginPath(); ctx.moveTo(f.x(rec.line[0]), f.y(rec.line[1])); ctx.lineTo(f.x(rec.line[2]), f.y(rec.line[3]));
      ctx.stroke(); ctx.setLineDash([]);
    }
    var focus = this.hovered !== null ? this.hovered : this.selected;
    for (var i = 0; i < this.seqs.n; i++) {
      var p = this.point(d, rec, i, k);
      if (!p) continue;
      var col = this.colors[this.seqs.labels[i]] || [90, 90, 90];
      ctx.globalAlpha = focus === null ? 1 : 0.35;
      ctx.fillStyle = "rgb(" + col.join(",") + ")";
      ctx.beginPath(); ctx.arc(f.x(p[0]), f.y(p[1]), 3.2, 0, 2 * Math.PI); ctx.fill();
    }
    ctx.globalAlpha = 1;
    if (focus !== null) this.drawPath(ctx, f, d, rec, focus);
    ctx.restore();
    ctx.strokeStyle = "#444"; ctx.lineWidth = 1; ctx.strokeRect(f.m.l, f.m.t, f.w, f.h);
    ctx.fillStyle = "#222"; ctx.textAlign = "center"; ctx.textBaseline = "top";
    niceTicks(meta.xlim[0], meta.xlim[1]).forEach(function (t) {
      ctx.fillText(fmt(t), f.x(t), f.m.t + f.h + 4);
    });
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    niceTicks(meta.ylim[0], meta.ylim[1]).forEach(function (t) { ctx.fillText(fmt(t), f.m.l - 4, f.y(t)); });
    var pc = meta.projection ? ["PC 1", "PC 2"] : ["h\u2080", "h\u2081"];
    ctx.textAlign = "center"; ctx.textBaseline = "bottom";
    ctx.fillText(pc[0], f.m.l + f.w / 2, Number(self.plane.dataset.h) - 2);
    ctx.save(); ctx.translate(11, f.m.t + f.h / 2); ctx.rotate(-Math.PI / 2); ctx.fillText(pc[1], 0, 0); ctx.restore();
    ctx.font = "bold 13px system-ui, sans-serif"; ctx.textAlign = "left"; ctx.textBaseline = "alphabetic";
    ctx.fillText("epoch " + rec.epoch + " \u00b7 after step " + meta.steps[k], f.m.l, f.m.t - 8);
  };

  /* One sequence's path: from the zero state through every kept step, numbered. */
  Viewer.prototype.drawPath = function (ctx, f, d, rec, i) {
    var pts = this.meta.origin ? [this.meta.origin] : [], col = this.colors[this.seqs.labels[i]] || [0, 0, 0];
    for (var s = 0; s < this.meta.steps.length; s++) { var p = this.point(d, rec, i, s); if (p) pts.push(p); }
    ctx.strokeStyle = "#111"; ctx.lineWidth = 1.6;
    ctx.beginPath();
    pts.forEach(function (p, j) { if (j) ctx.lineTo(f.x(p[0]), f.y(p[1])); else ctx.moveTo(f.x(p[0]), f.y(p[1])); });
    ctx.stroke();
    ctx.font = "bold 11px system-ui, sans-serif"; ctx.textAlign = "left"; ctx.textBaseline = "bottom";
    for (var j = 0; j < pts.length; j++) {
      var now = j === this.step + 1;
      ctx.fillStyle = j ? "rgb(" + col.join(",") + ")" : "#fff";
      ctx.strokeStyle = "#111"; ctx.lineWidth = now ? 2.5 : 1.2;
      ctx.beginPath(); ctx.arc(f.x(pts[j][0]), f.y(pts[j][1]), now ? 7 : 4.5, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
      if (j) { ctx.fillStyle = "#111"; ctx.fillText(String(this.meta.steps[j - 1]), f.x(pts[j][0]) + 6, f.y(pts[j][1]) - 4); }
    }
  };

  Viewer.prototype.nearest = function (ev) {
    if (!this.epochs.length) return null;
    var box = this.plane.getBoundingClientRect(), sx = Number(this.plane.dataset.w) / box.width;
    var mx = (ev.clientX - box.left) * sx, my = (ev.clientY - box.top) * sx, f = this.frame();
    var rec = this.epochs[this.index], d = this.data(this.index), best = null, bestD = 100;
    for (var i = 0; i < this.seqs.n; i++) {
      var p = this.point(d, rec, i, this.step);
      if (!p) continue;
      var dx = f.x(p[0]) - mx, dy = f.y(p[1]) - my, dd = dx * dx + dy * dy;
      if (dd < bestD) { bestD = dd; best = i; }
    }
    return best;
  };

  Viewer.prototype.drawLoss = function () {
    var c = this.lossCanvas, ctx = this.ctx(c), W = Number(c.dataset.w), H = Number(c.dataset.h);
    var m = {l: 48, r: 10, t: 22, b: 30}, w = W - m.l - m.r, h = H - m.t - m.b, L = this.losses;
    var n = Math.max(this.meta.n_epochs, L.train.length, 1), all = L.train.concat(L.val).filter(function (v) {
      return v !== null && v !== undefined && v > 0; });
    ctx.font = "11px system-ui, sans-serif";
    ctx.strokeStyle = "#444"; ctx.strokeRect(m.l, m.t, w, h);
    ctx.fillStyle = "#222"; ctx.textAlign = "center"; ctx.textBaseline = "top";
    ctx.fillText("Epochs", m.l + w / 2, H - 13);
    niceTicks(0, n).forEach(function (t) { ctx.fillText(String(t), m.l + t / n * w, m.t + h + 3); });
    ctx.font = "bold 12px system-ui, sans-serif"; ctx.textAlign = "left"; ctx.textBaseline = "alphabetic";
    ctx.fillText("Loss (log scale)", m.l, m.t - 7);
    if (!all.length) return;
    var lo = Math.log10(Math.min.apply(null, all) / 1.3), hi = Math.log10(Math.max.apply(null, all) * 1.3);
    if (hi - lo < 1e-6) { hi += 0.5; lo -= 0.5; }
    var X = function (e) { return m.l + e / n * w; }, Y = function (v) { return m.t + (hi - Math.log10(v)) / (hi - lo) * h; };
    ctx.font = "11px system-ui, sans-serif"; ctx.textAlign = "right"; ctx.textBaseline = "middle";
    var marks = hi - lo > 2.2 ? [1] : hi - lo > 1.2 ? [1, 3] : hi - lo > 0.5 ? [1, 2, 5] : [1, 2, 3, 4, 5, 6, 7, 8, 9];
    for (var p = Math.floor(lo); p <= Math.ceil(hi); p++) {
      marks.forEach(function (k) {
        var v = k * Math.pow(10, p), y = Y(v);
        if (y < m.t - 1 || y > m.t + h + 1) return;
        ctx.fillText(p >= 0 ? String(v) : v.toFixed(-p), m.l - 4, y);
        ctx.strokeStyle = "#eee"; ctx.beginPath(); ctx.moveTo(m.l + 1, y); ctx.lineTo(m.l + w - 1, y); ctx.stroke();
      });
    }
    [[L.train, "#1f77b4", "training"], [L.val, "#d62728", "validation"]].forEach(function (s, j) {
      ctx.strokeStyle = s[1]; ctx.lineWidth = 1.5; ctx.beginPath();
      var on = false;
      s[0].forEach(function (v, e) {
        if (v === null || v === undefined || !(v > 0)) { on = false; return; }
        if (on) ctx.lineTo(X(e + 1), Y(v)); else ctx.moveTo(X(e + 1), Y(v));
        on = true;
      });
      ctx.stroke();
      if (s[0].some(function (v) { return v > 0; })) {
        ctx.fillStyle = s[1]; ctx.textAlign = "right"; ctx.textBaseline = "top";
        ctx.fillText(s[2], m.l + w - 4, m.t + 4 + 14 * j);
      }
    });
    var rec = this.epochs[this.index];
    if (rec) {
      ctx.strokeStyle = "#111"; ctx.lineWidth = 1; ctx.setLineDash([3, 3]);
      ctx.beginPath(); ctx.moveTo(X(rec.epoch), m.t); ctx.lineTo(X(rec.epoch), m.t + h); ctx.stroke(); ctx.setLineDash([]);
    }
  };

  Viewer.prototype.drawInfo = function () {
    var i = this.hovered !== null ? this.hovered : this.selected, ctx = this.ctx(this.inputCanvas), meta = this.meta;
    if (i === null || !this.epochs.length) {
      this.info.textContent = "Hover over or click a sequence's point to follow it (arrow keys on the plot, too).";
      return;
    }
    var d = this.data(this.index), K = meta.binary ? 1 : meta.classes.length, S = meta.steps.length;
    var label = this.seqs.labels[i], rows = [];
    for (var s = 0; s < S; s++) {
      if (!this.point(d, this.epochs[this.index], i, s)) continue;
      var o = (i * S + s) * K, pTrue, top;
      if (K === 1) { pTrue = d.probs[o] / 255; top = pTrue >= 0.5 ? 1 : 0; pTrue = label === 1 ? pTrue : 1 - pTrue; }
      else { top = 0; for (var q = 1; q < K; q++) if (d.probs[o + q] > d.probs[o + top]) top = q; pTrue = d.probs[o + label] / 255; }
      rows.push([meta.steps[s], K === 1 ? d.probs[o] / 255 : pTrue, top]);
    }
    var cur = rows.filter(function (r) { return r[0] <= meta.steps[this.step]; }, this).pop() || rows[0];
    var what = K === 1 ? "P(" + meta.classes[1] + ")" : "P(" + meta.classes[label] + ")";
    this.info.textContent = "";
    el("p", {"class": "sqv-seq", "text": "Sequence " + (i + 1) + " (" + meta.classes[label] + ")"}, this.info);
    if (cur) {
      el("p", {"class": "sqv-prob", "text": what + " = " + cur[1].toFixed(3) + " after step " + cur[0] + ": predicted "
               + meta.classes[cur[2]] + (cur[2] === label ? " \u2714" : " \u2718")}, this.info);
      el("p", {"class": "sqv-steps", "text": "per step: " + rows.map(function (r) {
        return r[0] + ": " + r[1].toFixed(2); }).join(", ")}, this.info);
    }
    this.drawInput(ctx, i);
  };

  /* The chosen sequence's input points (the first two features), numbered in order. */
  Viewer.prototype.drawInput = function (ctx, i) {
    var F = this.seqs.features, L = this.seqs.length, n = this.seqs.lengths ? this.seqs.lengths[i] : L;
    var pts = [];
    for (var t = 0; t < n; t++) {
      var o = (i * L + t) * F;
      pts.push([this.seqs.points[o], F > 1 ? this.seqs.points[o + 1] : t]);
    }
    var xs = pts.map(function (p) { return p[0]; }), ys = pts.map(function (p) { return p[1]; });
    var lo = Math.min(Math.min.apply(null, xs), Math.min.apply(null, ys), -1.2);
    var hi = Math.max(Math.max.apply(null, xs), Math.max.apply(null, ys), 1.2), W = 180, pad = 18;
    var P = function (v) { return pad + (v - lo) / (hi - lo) * (W - 2 * pad); };
    var col = this.colors[this.seqs.labels[i]] || [0, 0, 0];
    ctx.strokeStyle = "#ccc"; ctx.strokeRect(0.5, 0.5, W - 1, W - 1);
    ctx.strokeStyle = "rgb(" + col.join(",") + ")"; ctx.lineWidth = 1.5; ctx.beginPath();
    pts.forEach(function (p, j) { if (j) ctx.lineTo(P(p[0]), W - P(p[1])); else ctx.moveTo(P(p[0]), W - P(p[1])); });
    ctx.stroke();
    ctx.font = "bold 11px system-ui, sans-serif"; ctx.textBaseline = "bottom";
    pts.forEach(function (p, j) {
      ctx.fillStyle = "rgb(" + col.join(",") + ")";
      ctx.beginPath(); ctx.arc(P(p[0]), W - P(p[1]), 4, 0, 2 * Math.PI); ctx.fill();
      ctx.fillStyle = "#111"; ctx.fillText(String(j + 1), P(p[0]) + 5, W - P(p[1]) - 3);
    });
    ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#555"; ctx.textBaseline = "top";
    ctx.fillText(F > 1 ? "input points" : "input over steps", 4, 4);
  };

  Viewer.prototype.destroy = function () {
    this.pause();
    this.root.textContent = "";
  };

  global.SquareseqViewer = {
    create: function (root, payload) { return new Viewer(root, payload); },
    version: 1
  };
})(typeof window !== "undefined" ? window : this);
