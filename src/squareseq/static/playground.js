// squareseq playground: the settings form, the training socket, and the viewer it feeds.
// The server streams {type: "meta"} once per run, then {type: "epoch"} per epoch; they draw in the
// run report's viewer (SquareseqViewer, viewer.js), as the report's replay does.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var fields = [], socket = null, viewer = null, planned = 0, state = "idle", pending = null;

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
      if (f.kind === "upload") {
        label.appendChild(uploadInput(f, query));
        box.appendChild(label);
        return;
      }
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

  var GENERATED_ONLY = ["task", "noise", "length", "n_train", "n_test"];

  // Own sequences: the file goes to the server, which keeps it under a token the settings (and the
  // address) then name; the settings that shape generated squares no longer apply.
  function uploadInput(f, query) {
    var span = document.createElement("span"), file = document.createElement("input");
    var token = document.createElement("input"), clear = document.createElement("button");
    span.className = "upload";
    file.type = "file"; file.accept = ".npz"; file.id = "f-data-file"; file.setAttribute("aria-label", f.label);
    token.type = "hidden"; token.id = "f-data"; token.value = query.has("data") ? query.get("data") : "";
    clear.type = "button"; clear.id = "clear-data"; clear.textContent = "Clear";
    file.addEventListener("change", function () {
      if (!file.files.length) { return; }
      say("");
      fetch("/api/upload", { method: "POST", body: file.files[0], headers: { "Content-Type": "application/octet-stream" } })
        .then(function (r) { return r.json().then(function (body) { return [r.ok, body]; }); })
        .then(function (res) {
          if (!res[0]) { say(res[1].error, "data"); token.value = ""; } else {
            token.value = res[1].data;
            var s = res[1].summary;
            $("data-summary").textContent = s.sequences + " sequences, array " + s.shape.join("×") + ", " + s.classes + " classes";
          }
          ownData();
        });
    });
    clear.addEventListener("click", function () { token.value = ""; file.value = ""; $("data-summary").textContent = ""; ownData(); });
    span.appendChild(file); span.appendChild(token); span.appendChild(clear);
    return span;
  }

  function ownData() {
    var own = $("f-data").value !== "";
    GENERATED_ONLY.forEach(function (name) { if ($("f-" + name)) { $("f-" + name).disabled = own; } });
    if ($("f-layout")) { $("f-layout").disabled = !own; }
  }

  function settings() {
    var out = {};
    var own = $("f-data").value !== "";
    fields.forEach(function (f) {
      if (own ? GENERATED_ONLY.indexOf(f.name) < 0 : f.name !== "layout") { out[f.name] = $("f-" + f.name).value; }
    });
    return out;
  }

  function queryOf(values) {
    var q = new URLSearchParams();
    fields.forEach(function (f) {
      if (values[f.name] !== undefined && values[f.name] !== f["default"]) { q.set(f.name, values[f.name]); }
    });
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
      $("status").textContent = "epoch " + m.epoch + " / " + planned +
        (m.train_loss != null ? " · loss " + m.train_loss.toFixed(4) : "") +
        (m.val_loss != null ? " · val loss " + m.val_loss.toFixed(4) : "") +
        " · test accuracy " + (100 * m.accuracy).toFixed(1) + "% · lr " + m.lr;
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
      $("status").textContent += " · done";
    }
  }

  function startViewer(meta) {
    var root = $("view");
    if (viewer && typeof viewer.destroy === "function") { viewer.destroy(); }
    root.textContent = "";
    viewer = window.SquareseqViewer.create(root, meta.payload);
    planned = meta.epochs;
  }

  function train(event) {
    event.preventDefault();
    say("");
    var values = settings(), q = queryOf(values);
    history.replaceState(null, "", q.toString() ? "?" + q.toString() : location.pathname);
    $("download").hidden = true;
    send({ type: "start", settings: values });  // the server checks them and says what is wrong
  }

  $("settings").addEventListener("submit", train);
  $("pause").addEventListener("click", function () { send({ type: state === "paused" ? "resume" : "pause" }); });
  $("step").addEventListener("click", function () { send({ type: "step" }); });
  $("reset").addEventListener("click", function () { send({ type: "reset" }); $("download").hidden = true; });
  $("set-lr").addEventListener("click", function () { send({ type: "lr", lr: $("new-lr").value }); });
  fetch("/api/fields").then(function (r) { return r.json(); })
    .then(function (spec) { buildForm(spec, new URLSearchParams(location.search)); ownData(); buttons(); openSocket(); })
    .catch(function () { say("could not load the settings from the server"); });
}());
