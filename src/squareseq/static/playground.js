// squareseq playground: the settings form, the training socket, and the viewer it feeds.
// The server streams {type: "meta"} once per run, then {type: "epoch"} per epoch; they draw in the
// run report's viewer (SquareseqViewer, viewer.js) when it is there, else in a small fallback.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var fields = [], socket = null, viewer = null, state = "idle", pending = null;

  function say(text, field) {
    $("message").textContent = text || "";
    document.querySelectorAll("#fields .bad").forEach(function (el) { el.classList.remove("bad"); });
    if (field && $("f-" + field)) { $("f-" + field).parentNode.classList.add("bad"); }
  }

  function buildForm(spec, query) {
    fields = spec.fields;
    var box = $("fields");
    fields.forEach(function (f) {
      var label = document.createElement("label"), input;
      label.textContent = f.label;
      if (f.choices) {
        input = document.createElement("select");
        f.choices.forEach(function (c) { var o = document.createElement("option"); o.value = o.textContent = c; input.appendChild(o); });
      } else {
        input = document.createElement("input");
        input.type = "number"; input.step = f.kind === "int" ? "1" : "any";
        input.min = f.min; input.max = f.max;
      }
      input.id = "f-" + f.name; input.name = f.name;
      input.value = query.has(f.name) ? query.get(f.name) : f["default"];
      label.appendChild(input);
      box.appendChild(label);
    });
  }

  function settings() {
    var out = {};
    fields.forEach(function (f) { out[f.name] = $("f-" + f.name).value; });
    return out;
  }

  function queryOf(values) {
    var q = new URLSearchParams();
    fields.forEach(function (f) { if (values[f.name] !== f["default"]) { q.set(f.name, values[f.name]); } });
    return q;
  }

  function buttons() {
    var active = state === "running" || state === "paused" || state === "preparing";
    $("train").disabled = active;
    $("pause").disabled = !(state === "running" || state === "paused");
    $("pause").textContent = state === "paused" ? "Resume" : "Pause";
    $("step").disabled = state !== "paused";
    $("reset").disabled = state === "idle";
    $("new-lr").disabled = $("set-lr").disabled = state !== "paused";
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify(message)); }
    else { pending = message; openSocket(); }
  }

  function openSocket() {
    if (socket && socket.readyState <= WebSocket.OPEN) { return; }
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws");
    socket.onopen = function () { if (pending) { socket.send(JSON.stringify(pending)); pending = null; } };
    socket.onmessage = function (event) { receive(JSON.parse(event.data)); };
    socket.onclose = function () {
      if (state === "running" || state === "paused" || state === "preparing") { say("the connection to the server closed: reload the page"); }
      state = "idle"; buttons();
    };
  }

  function receive(m) {
    if (m.type === "error") { say(m.message, m.field); return; }
    if (m.type === "meta") { startViewer(m); return; }
    if (m.type === "epoch") {
      if (viewer) { viewer.addEpoch(m); }
      $("status").textContent = "epoch " + m.epoch + " / " + (viewer ? viewer.meta.epochs : "?") +
        (m.loss != null ? "   loss " + m.loss.toFixed(4) : "") +
        (m.val_loss != null ? "   val loss " + m.val_loss.toFixed(4) : "") +
        "   accuracy " + (100 * m.accuracy).toFixed(1) + "%   lr " + m.lr;
      document.body.dataset.epoch = m.epoch;
      return;
    }
    if (m.type === "state") {
      state = m.state; buttons();
      document.body.dataset.state = m.state;
      if (m.state === "paused" && m.lr != null) { $("new-lr").value = m.lr; }
      if (m.state === "idle") { $("status").textContent = "idle"; }
      return;
    }
    if (m.type === "done") {
      var link = $("download");
      link.href = m.download; link.hidden = false;
      $("status").textContent += "   done";
    }
  }

  function startViewer(meta) {
    var root = $("view");
    root.textContent = "";
    var payload = Object.assign({}, meta, { epochs_data: [], live: true });
    if (window.SquareseqViewer && typeof window.SquareseqViewer.create === "function") {
      viewer = window.SquareseqViewer.create(root, payload);
      viewer.meta = meta;
    } else {
      viewer = fallbackViewer(root, meta);
    }
  }

  // A minimal stand-in for the report's viewer: hidden states of the sample and the loss curves.
  function fallbackViewer(root, meta) {
    root.classList.add("fallback");
    var space = document.createElement("canvas"), curve = document.createElement("canvas");
    space.width = space.height = 420; curve.width = 420; curve.height = 200;
    space.setAttribute("aria-label", "hidden states"); curve.setAttribute("aria-label", "losses");
    root.appendChild(space); root.appendChild(curve);
    var colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
    var losses = [], vals = [];
    return {
      meta: meta,
      addEpoch: function (r) {
        if (r.epoch > 0) { losses.push(r.loss); vals.push(r.val_loss); }
        var g = space.getContext("2d"), w = space.width, h = space.height;
        var sx = function (x) { return (x - r.xlim[0]) / (r.xlim[1] - r.xlim[0]) * w; };
        var sy = function (y) { return h - (y - r.ylim[0]) / (r.ylim[1] - r.ylim[0]) * h; };
        g.clearRect(0, 0, w, h);
        r.states.forEach(function (seq, i) {
          g.strokeStyle = g.fillStyle = colors[meta.labels[i] % colors.length];
          g.globalAlpha = 0.5; g.beginPath();
          seq.slice(0, meta.lengths[i]).forEach(function (p, t) { if (p[0] == null) { return; } if (t) { g.lineTo(sx(p[0]), sy(p[1])); } else { g.moveTo(sx(p[0]), sy(p[1])); } });
          g.stroke(); g.globalAlpha = 1;
          var last = seq[meta.lengths[i] - 1];
          if (last && last[0] != null) { g.beginPath(); g.arc(sx(last[0]), sy(last[1]), 3, 0, 7); g.fill(); }
        });
        if (r.line) { g.strokeStyle = "#000"; g.lineWidth = 2; g.beginPath(); g.moveTo(sx(r.line[0][0]), sy(r.line[0][1])); g.lineTo(sx(r.line[1][0]), sy(r.line[1][1])); g.stroke(); g.lineWidth = 1; }
        g.fillStyle = "#000"; g.fillText("epoch " + r.epoch + (r.projection ? "  (" + r.projection + ")" : ""), 8, 14);
        var c = curve.getContext("2d"), cw = curve.width, ch = curve.height;
        c.clearRect(0, 0, cw, ch);
        var all = losses.concat(vals).filter(function (v) { return v != null; });
        var top = Math.max.apply(null, all.concat([1e-9]));
        [[losses, "#1f77b4"], [vals, "#ff7f0e"]].forEach(function (pair) {
          c.strokeStyle = pair[1]; c.beginPath();
          pair[0].forEach(function (v, i) { if (v == null) { return; } var x = (i + 1) / meta.epochs * cw, y = ch - v / top * (ch - 10); if (i) { c.lineTo(x, y); } else { c.moveTo(x, y); } });
          c.stroke();
        });
        c.fillStyle = "#000"; c.fillText("loss (blue: training, orange: validation)", 8, 14);
      }
    };
  }

  function train(event) {
    event.preventDefault();
    say("");
    var values = settings(), q = queryOf(values);
    history.replaceState(null, "", q.toString() ? "?" + q.toString() : location.pathname);
    var all = new URLSearchParams(values);
    fetch("/api/check?" + all.toString()).then(function (r) { return r.json().then(function (body) { return [r.ok, body]; }); })
      .then(function (res) {
        if (!res[0]) { say(res[1].error, res[1].field); return; }
        $("download").hidden = true;
        send({ type: "start", settings: values });
      })
      .catch(function () { say("the server did not answer: is squareseq playground still running?"); });
  }

  $("settings").addEventListener("submit", train);
  $("pause").addEventListener("click", function () { send({ type: state === "paused" ? "resume" : "pause" }); });
  $("step").addEventListener("click", function () { send({ type: "step" }); });
  $("reset").addEventListener("click", function () { send({ type: "reset" }); $("download").hidden = true; });
  $("set-lr").addEventListener("click", function () { send({ type: "lr", lr: $("new-lr").value }); });
  fetch("/api/fields").then(function (r) { return r.json(); })
    .then(function (spec) { buildForm(spec, new URLSearchParams(location.search)); buttons(); openSocket(); })
    .catch(function () { say("could not load the settings from the server"); });
}());
