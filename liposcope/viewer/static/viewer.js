"use strict";
// The liposcope viewer page: OpenSeadragon draws the slide, one canvas over it draws every layer
// (heatmap tiles, tissue grid, hotspot boxes, nuclei and mitoses) from the GeoJSON the commands wrote.
// Sets window.liposcope = {ready: true, layers: {name: count}} once the tiles and the layers are drawn.
(function () {
  const slideId = decodeURIComponent(location.pathname.replace(/^\/slides\//, ""));
  const api = "/api/slides/" + encodeURIComponent(slideId);
  window.liposcope = { ready: false, layers: {} };

  const ORDER = ["heatmap", "tissue", "hotspots"]; // shape layers under point layers; mitoses on top
  const RINGS = new Set(["mitoses"]);
  const HIDDEN = new Set(["tissue"]);
  const POINT_UM = { ring: 8, dot: 3 }; // drawn radius in µm at full zoom
  const state = { layers: [], selected: [], viewer: null, image: null, mpp: null, width: 1, pending: false };
  const $ = (id) => document.getElementById(id);

  // -- colours ---------------------------------------------------------------------------------
  // Turbo (Google's polynomial fit), the colour map of heatmap.png.
  function turbo(t) {
    const x = Math.min(1, Math.max(0, t));
    const v = [1, x, x * x, x * x * x, x ** 4, x ** 5];
    const c = [
      [0.13572138, 4.6153926, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
      [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
      [0.1066733, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
    ];
    const rgb = c.map((k) => Math.round(255 * Math.min(1, Math.max(0, k.reduce((s, ki, i) => s + ki * v[i], 0)))));
    return `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
  }
  const css = (color, fallback) => (Array.isArray(color) ? `rgb(${color.join(",")})` : fallback);

  // -- layers: GeoJSON → arrays ready to draw -----------------------------------------------------
  function prepare(name, collection) {
    const features = (collection.features || []).filter((f) => f && f.geometry);
    const layer = { name, features, count: features.length, visible: !HIDDEN.has(name), opacity: 1, classes: [] };
    if (features.length && features.every((f) => f.geometry.type === "Point")) {
      preparePoints(layer);
    } else {
      prepareShapes(layer);
    }
    if (name === "heatmap") layer.opacity = 0.45;
    return layer;
  }

  function preparePoints(layer) {
    const n = layer.count;
    const byClass = new Map();
    layer.features.forEach((f, i) => {
      const c = (f.properties && f.properties.classification) || {};
      const key = c.name || layer.name;
      const rgb = Array.isArray(c.color) ? c.color : [0, 114, 178];
      if (!byClass.has(key)) byClass.set(key, { name: key, color: css(rgb), rgb, index: [] });
      byClass.get(key).index.push(i);
    });
    layer.kind = "points";
    layer.style = RINGS.has(layer.name) ? "ring" : "dot";
    layer.xs = new Float64Array(n);
    layer.ys = new Float64Array(n);
    layer.features.forEach((f, i) => {
      layer.xs[i] = f.geometry.coordinates[0];
      layer.ys[i] = f.geometry.coordinates[1];
    });
    layer.classes = [...byClass.values()].map((c) => ({ ...c, count: c.index.length, index: Int32Array.from(c.index) }));
  }

  function prepareShapes(layer) {
    layer.kind = "shapes";
    layer.rings = layer.features.map((f) => {
      const g = f.geometry;
      const ring = g.type === "Polygon" ? g.coordinates[0] : g.type === "MultiPolygon" ? g.coordinates[0][0] : [];
      return ring || [];
    });
    layer.boxes = layer.rings.map((r) => {
      const xs = r.map((p) => p[0]);
      const ys = r.map((p) => p[1]);
      return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
    });
    if (layer.name === "heatmap") {
      const values = layer.features.map((f) => ((f.properties || {}).measurements || {}).attention ?? 0);
      const order = values.map((v, i) => i).sort((a, b) => values[a] - values[b]);
      layer.fills = new Array(values.length);
      order.forEach((i, rank) => (layer.fills[i] = turbo(values.length > 1 ? rank / (values.length - 1) : 1)));
    }
  }

  // -- drawing ----------------------------------------------------------------------------------
  function transform() {
    const p0 = state.image.imageToViewerElementCoordinates(new OpenSeadragon.Point(0, 0));
    const p1 = state.image.imageToViewerElementCoordinates(new OpenSeadragon.Point(state.width, 0));
    return { s: (p1.x - p0.x) / state.width, ox: p0.x, oy: p0.y };
  }

  function draw() {
    state.pending = false;
    if (!state.image) return;
    const started = performance.now();
    drawLayers();
    // A user-timing entry per frame (bench/viewer_points.py reads them); the buffer is kept short.
    if (performance.getEntriesByName("liposcope-draw").length > 500) performance.clearMeasures("liposcope-draw");
    performance.measure("liposcope-draw", { start: started, end: performance.now() });
  }

  function drawLayers() {
    const canvas = $("overlay");
    const dpr = window.devicePixelRatio || 1;
    const w = state.viewer.container.clientWidth;
    const h = state.viewer.container.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
      canvas.style.width = w + "px";
      canvas.style.height = h + "px";
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const t = transform();
    const view = { x0: -t.ox / t.s, y0: -t.oy / t.s, x1: (w - t.ox) / t.s, y1: (h - t.oy) / t.s };
    for (const layer of state.layers) {
      if (!layer.visible) continue;
      ctx.globalAlpha = layer.opacity;
      if (layer.kind === "points") drawPoints(ctx, layer, t, view);
      else drawShapes(ctx, layer, t, view);
    }
    ctx.globalAlpha = 1;
    drawSelection(ctx, t);
    updateScaleBar(t.s);
  }

  function pointRadius(layer, s) {
    const level0 = state.mpp ? POINT_UM[layer.style] / state.mpp : layer.style === "ring" ? 32 : 12;
    return layer.style === "ring" ? Math.max(7, level0 * s) : Math.min(10, Math.max(1.5, level0 * s));
  }

  function drawPoints(ctx, layer, t, view) {
    const r = pointRadius(layer, t.s);
    if (layer.style === "dot" && r < 3) return drawDotsRaster(ctx, layer, t, view, r);
    const pad = r / t.s;
    const { xs, ys } = layer;
    for (const c of layer.classes) {
      ctx.fillStyle = ctx.strokeStyle = c.color;
      ctx.lineWidth = layer.style === "ring" ? 2.5 : 2;
      const squares = layer.style === "dot" && r < 3;
      if (!squares) ctx.beginPath();
      for (const i of c.index) {
        const x = xs[i];
        const y = ys[i];
        if (x < view.x0 - pad || x > view.x1 + pad || y < view.y0 - pad || y > view.y1 + pad) continue;
        const sx = t.ox + x * t.s;
        const sy = t.oy + y * t.s;
        if (squares) {
          ctx.fillRect(sx - r, sy - r, 2 * r, 2 * r);
        } else {
          ctx.moveTo(sx + r, sy);
          ctx.arc(sx, sy, r, 0, 2 * Math.PI);
        }
      }
      if (squares) continue;
      if (layer.style === "ring" || r >= 4) ctx.stroke(); // rings leave the nucleus itself visible
      else ctx.fill();
    }
  }

  // Small dots straight into pixels: one pass over the points, one image drawn (100k points in a few ms).
  function drawDotsRaster(ctx, layer, t, view, r) {
    const W = ctx.canvas.width;
    const H = ctx.canvas.height;
    const dpr = W / state.viewer.container.clientWidth;
    if (!layer.raster || layer.raster.width !== W || layer.raster.height !== H) {
      layer.raster = document.createElement("canvas");
      Object.assign(layer.raster, { width: W, height: H });
      layer.pixels = layer.raster.getContext("2d").createImageData(W, H);
      layer.words = new Uint32Array(layer.pixels.data.buffer);
    }
    const words = layer.words;
    words.fill(0);
    const half = Math.max(1, Math.round(r * dpr));
    const k = t.s * dpr;
    for (const c of layer.classes) {
      const word = ((255 << 24) | (c.rgb[2] << 16) | (c.rgb[1] << 8) | c.rgb[0]) >>> 0; // RGBA, little-endian
      for (const i of c.index) {
        const sx = Math.round(t.ox * dpr + layer.xs[i] * k);
        const sy = Math.round(t.oy * dpr + layer.ys[i] * k);
        if (sx < half || sy < half || sx >= W - half || sy >= H - half) continue;
        for (let y = sy - half; y < sy + half; y++) words.fill(word, y * W + sx - half, y * W + sx + half);
      }
    }
    layer.raster.getContext("2d").putImageData(layer.pixels, 0, 0);
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(layer.raster, 0, 0);
    ctx.restore();
  }

  function tracePolygon(ctx, ring, t) {
    ring.forEach((p, k) => (k ? ctx.lineTo : ctx.moveTo).call(ctx, t.ox + p[0] * t.s, t.oy + p[1] * t.s));
    ctx.closePath();
  }

  function drawShapes(ctx, layer, t, view) {
    const hotspots = layer.name === "hotspots";
    ctx.lineWidth = hotspots ? 3 : 1;
    ctx.setLineDash(hotspots ? [10, 6] : []);
    layer.rings.forEach((ring, i) => {
      const b = layer.boxes[i];
      if (b[2] < view.x0 || b[0] > view.x1 || b[3] < view.y0 || b[1] > view.y1 || ring.length < 3) return;
      ctx.beginPath();
      tracePolygon(ctx, ring, t);
      const cls = ((layer.features[i].properties || {}).classification || {});
      if (layer.fills) {
        ctx.fillStyle = layer.fills[i];
        ctx.fill();
      } else {
        ctx.strokeStyle = css(cls.color, hotspots ? "#111" : "#0072b2");
        ctx.stroke();
        if (hotspots && cls.name) {
          ctx.fillStyle = ctx.strokeStyle;
          ctx.font = "bold 13px system-ui, sans-serif";
          // Kept clear of the zoom buttons when the box starts at the top of the view.
          const y = Math.min(Math.max(t.oy + b[1] * t.s + 17, 52), t.oy + b[3] * t.s - 6);
          ctx.fillText(cls.name, Math.max(t.ox + b[0] * t.s, 0) + 6, y);
        }
      }
    });
    ctx.setLineDash([]);
  }

  function drawSelection(ctx, t) {
    ctx.lineWidth = 2;
    for (const hit of state.selected) {
      ctx.strokeStyle = "#000";
      ctx.beginPath();
      if (hit.point) ctx.arc(t.ox + hit.point[0] * t.s, t.oy + hit.point[1] * t.s, 12, 0, 2 * Math.PI);
      else tracePolygon(ctx, hit.ring, t);
      ctx.stroke();
    }
  }

  function schedule() {
    if (!state.pending) {
      state.pending = true;
      requestAnimationFrame(draw);
    }
  }

  // -- scale bar ------------------------------------------------------------------------------------
  function updateScaleBar(s) {
    if (!state.mpp) return;
    const umPerPx = state.mpp / s;
    const target = 120 * umPerPx;
    const base = 10 ** Math.floor(Math.log10(target));
    const um = [5, 2, 1].map((m) => m * base).find((v) => v <= target) || base;
    $("scalebar").hidden = false;
    $("scalebar-bar").style.width = um / umPerPx + "px";
    $("scalebar-label").textContent = um >= 1000 ? `${um / 1000} mm` : `${um} µm`;
  }

  // -- clicking: which detection or tile is under the pointer ----------------------------------------
  function hitTest(ip, s) {
    const hits = [];
    for (const layer of [...state.layers].reverse()) {
      if (!layer.visible) continue;
      if (layer.kind === "points") {
        const reach = Math.max(pointRadius(layer, s), 6) / s;
        let best = -1;
        let bestD = reach * reach;
        for (let i = 0; i < layer.count; i++) {
          const d = (layer.xs[i] - ip.x) ** 2 + (layer.ys[i] - ip.y) ** 2;
          if (d <= bestD) [best, bestD] = [i, d];
        }
        if (best >= 0) return [{ layer, feature: layer.features[best], point: [layer.xs[best], layer.ys[best]] }];
      } else {
        layer.rings.forEach((ring, i) => {
          const b = layer.boxes[i];
          if (ip.x >= b[0] && ip.x <= b[2] && ip.y >= b[1] && ip.y <= b[3] && inside(ring, ip)) {
            hits.push({ layer, feature: layer.features[i], ring });
          }
        });
      }
    }
    return hits;
  }

  function inside(ring, p) {
    let inn = false;
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [xi, yi] = ring[i];
      const [xj, yj] = ring[j];
      if (yi > p.y !== yj > p.y && p.x < ((xj - xi) * (p.y - yi)) / (yj - yi) + xi) inn = !inn;
    }
    return inn;
  }

  function showSelection(hits, ip) {
    const box = $("selected");
    box.replaceChildren();
    const where = state.mpp
      ? `x ${Math.round(ip.x)}, y ${Math.round(ip.y)} px (${((ip.x * state.mpp) / 1000).toFixed(2)}, ${((ip.y * state.mpp) / 1000).toFixed(2)} mm)`
      : `x ${Math.round(ip.x)}, y ${Math.round(ip.y)} px`;
    box.append(text("p", where, "muted"));
    if (!hits.length) box.append(text("p", "nothing here in the visible layers", "muted"));
    for (const hit of hits) {
      const props = hit.feature.properties || {};
      const cls = (props.classification || {}).name;
      box.append(text("p", `${hit.layer.name}${cls ? ": " + cls : ""}`, "call"));
      const rows = Object.entries(props.measurements || {}).map(([k, v]) => [k, fmt(v)]);
      if (hit.point) rows.unshift(["x, y (px)", hit.point.map((v) => v.toFixed(1)).join(", ")]);
      box.append(facts(rows));
    }
    state.selected = hits;
    schedule();
  }

  // -- the side panel -----------------------------------------------------------------------------
  function text(tag, content, cls) {
    const el = document.createElement(tag);
    el.textContent = content;
    if (cls) el.className = cls;
    return el;
  }

  function fmt(v) {
    if (typeof v !== "number") return v === null || v === undefined ? "—" : String(v);
    if (Number.isInteger(v)) return String(v);
    return Math.abs(v) < 0.01 && v !== 0 ? v.toExponential(2) : String(Number(v.toFixed(3)));
  }

  function facts(rows) {
    const table = document.createElement("table");
    table.className = "facts";
    for (const [k, v] of rows) {
      const row = table.insertRow();
      row.insertCell().textContent = k;
      row.insertCell().textContent = v;
    }
    return table;
  }

  function layerPanel() {
    const list = $("layer-list");
    list.replaceChildren();
    if (!state.layers.length) list.append(text("p", "no layers in this slide's folder", "muted"));
    for (const layer of state.layers) {
      const row = document.createElement("div");
      row.className = "layer";
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.id = "layer-" + layer.name;
      box.checked = layer.visible;
      box.addEventListener("change", () => ((layer.visible = box.checked), schedule()));
      label.append(box, text("span", layer.name), text("span", layer.count.toLocaleString(), "count"));
      const slider = document.createElement("input");
      Object.assign(slider, { type: "range", min: 0, max: 1, step: 0.05, value: layer.opacity, id: "opacity-" + layer.name });
      slider.title = "opacity";
      slider.addEventListener("input", () => ((layer.opacity = Number(slider.value)), schedule()));
      row.append(label, slider);
      if (layer.classes.length > 1 || (layer.classes[0] && layer.classes[0].name !== layer.name)) {
        const classes = document.createElement("div");
        classes.className = "classes";
        for (const c of layer.classes) {
          const item = text("span", `${c.name} ${c.count.toLocaleString()}`);
          const swatch = document.createElement("span");
          swatch.className = "swatch";
          swatch.style.background = c.color;
          item.prepend(swatch);
          classes.append(item);
        }
        row.append(classes);
      }
      list.append(row);
    }
    if (state.layers.some((l) => l.name === "heatmap")) {
      $("legend-section").hidden = false;
      const legend = $("legend").getContext("2d");
      for (let x = 0; x < 160; x++) {
        legend.fillStyle = turbo(x / 159);
        legend.fillRect(x, 0, 1, 12);
      }
    }
  }

  function resultsPanel(results) {
    const box = $("results");
    box.replaceChildren();
    const p = results.prediction;
    if (p) {
      box.append(text("h3", "Subtype (predict)"));
      const top = p.probabilities ? p.probabilities[p.predicted_class] : undefined;
      box.append(text("p", `${p.predicted_class}${top !== undefined ? ` (p = ${top.toFixed(2)})` : ""}`, "call"));
      const rows = Object.entries(p.probabilities || {}).map(([k, v]) => [k, v.toFixed(3)]);
      rows.push(["tiles analysed", fmt(p.tiles_analysed)], ["tissue (mm²)", fmt(p.tissue_area_mm2)]);
      box.append(facts(rows));
      for (const w of p.warnings || []) box.append(text("p", "⚠ " + w, "warn"));
    }
    const ihc = results.ihc;
    if (ihc) {
      box.append(text("h3", `${ihc.marker || "IHC"} (ihc)`));
      box.append(text("p", `labelling index ${fmt(ihc.labelling_index_pct)} %, ${ihc.status || ""}`, "call"));
      box.append(facts([
        ["nuclei", fmt(ihc.nuclei_total)], ["positive", fmt(ihc.nuclei_positive)],
        ["hotspot index (%)", fmt(ihc.hotspot_labelling_index_pct)], ["H-score", fmt(ihc.h_score)],
        ["weak / moderate / strong (%)", [ihc.percent_weak, ihc.percent_moderate, ihc.percent_strong].map(fmt).join(" / ")],
        ["area (mm²)", fmt(ihc.area_mm2)],
      ]));
    }
    const m = results.mitoses;
    if (m) {
      box.append(text("h3", "Mitoses (mitoses)"));
      box.append(text("p", `${fmt(m.per_10hpf)} per 10 HPF, mitotic score ${fmt(m.mitotic_score)}`, "call"));
      const rows = [
        ["figures", fmt(m.count)], ["hotspot per 10 HPF", fmt(m.hotspot_per_10hpf)], ["per mm²", fmt(m.per_mm2)],
        ["tissue (mm²)", fmt(m.tissue_area_mm2)], ["HPF (mm²)", fmt(m.hpf_area_mm2)],
      ];
      if (m.fnclcc) rows.push(["FNCLCC grade (suggested)", fmt(m.fnclcc.grade)]);
      box.append(facts(rows));
      if (m.fnclcc && m.fnclcc.note) box.append(text("p", m.fnclcc.note, "warn"));
    }
    if (!box.children.length) box.append(text("p", "no results in this slide's folder", "muted"));
  }

  // -- start ----------------------------------------------------------------------------------------
  function fail(message) {
    $("status").textContent = message;
    window.liposcope.error = message;
  }

  async function getJSON(url) {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return r.json();
  }

  function tilesDrawn(image) {
    return new Promise((resolve) => {
      if (image.getFullyLoaded()) resolve();
      else image.addOnceHandler("fully-loaded-change", resolve);
    });
  }

  async function main() {
    const slides = await getJSON("/api/slides");
    const entry = slides.find((s) => s.slide_id === slideId);
    if (!entry) return fail(`unknown slide ${slideId}`);
    document.title = `${slideId}: liposcope viewer`;
    $("title").textContent = slideId;
    state.mpp = entry.mpp;
    state.width = entry.dimensions[0];
    const viewer = OpenSeadragon({
      element: "viewer",
      prefixUrl: "/static/openseadragon/images/",
      tileSources: `/slides/${encodeURIComponent(slideId)}.dzi`,
      drawer: "canvas",
      showNavigator: true,
      navigatorPosition: "TOP_RIGHT",
      showRotationControl: false,
      maxZoomPixelRatio: 4,
      gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: true },
    });
    state.viewer = viewer;
    const overlay = document.createElement("canvas");
    overlay.id = "overlay";
    viewer.canvas.append(overlay);
    const opened = new Promise((resolve, reject) => {
      viewer.addOnceHandler("open", resolve);
      viewer.addOnceHandler("open-failed", (e) => reject(new Error("slide tiles: " + e.message)));
    });
    const [names, results] = await Promise.all([getJSON(api + "/layers"), getJSON(api + "/results")]);
    resultsPanel(results);
    const collections = await Promise.all(
      names.map((n) => getJSON(`${api}/layers/${encodeURIComponent(n)}.geojson`)),
    );
    const rank = (n) => (RINGS.has(n) ? 99 : ORDER.includes(n) ? ORDER.indexOf(n) : 50);
    state.layers = names.map((n, i) => prepare(n, collections[i])).sort((a, b) => rank(a.name) - rank(b.name));
    layerPanel();
    await opened;
    state.image = viewer.world.getItemAt(0);
    viewer.addHandler("update-viewport", draw);
    window.addEventListener("resize", schedule);
    viewer.addHandler("canvas-click", (e) => {
      if (!e.quick) return;
      const ip = state.image.viewerElementToImageCoordinates(e.position);
      showSelection(hitTest(ip, transform().s), ip);
    });
    await tilesDrawn(state.image);
    draw();
    const counts = Object.fromEntries(state.layers.map((l) => [l.name, l.count]));
    $("status").textContent = `${state.layers.length} layer(s); ${entry.slide_path}`;
    window.liposcope = { ready: true, layers: counts };
  }

  main().catch((e) => fail(String(e && e.message ? e.message : e)));
})();
