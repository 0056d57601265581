// Marks the region an htmx request is about to replace as aria-busy while the request runs, so
// assistive technology waits for the new content instead of reading a half-updated region. The
// visible "Loading…" indicators are aria-hidden and take no space when idle (app.css).
(function () {
  "use strict";

  function region(evt) {
    const ctx = evt.detail && evt.detail.ctx;
    const target = ctx && ctx.target;
    // A whole-page swap has the document's own loading state; only parts of a page are marked.
    return target instanceof Element && target !== document.body ? target : null;
  }

  document.addEventListener("htmx:before:request", function (evt) {
    const target = region(evt);
    if (target) target.setAttribute("aria-busy", "true");
  });

  document.addEventListener("htmx:finally:request", function (evt) {
    const target = region(evt);
    // An outerHTML swap has replaced the target already; a morph or innerHTML swap kept it.
    if (target) target.removeAttribute("aria-busy");
  });
})();
