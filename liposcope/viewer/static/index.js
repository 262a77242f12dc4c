"use strict";
// The slide list: one row per registered slide, linking to its viewer page.
fetch("/api/slides").then((r) => r.json()).then((slides) => {
  const body = document.querySelector("#slides tbody");
  for (const s of slides) {
    const row = body.insertRow();
    const link = document.createElement("a");
    link.href = "/slides/" + encodeURIComponent(s.slide_id);
    link.textContent = s.slide_id;
    row.insertCell().append(link);
    for (const text of [s.mpp ? s.mpp.toFixed(3) : "unknown", s.layers.join(", "), s.results.join(", "), s.slide_path]) {
      row.insertCell().textContent = text;
    }
  }
});
