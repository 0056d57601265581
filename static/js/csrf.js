// Adds the CSRF token to every unsafe htmx request. The token comes from
// <meta name="csrf-token">, read on each request so a swapped-in fresh token wins.
(function () {
  "use strict";

  function token() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function sameOrigin(action) {
    try {
      return new URL(action || "", document.baseURI).origin === location.origin;
    } catch (e) {
      return false;
    }
  }

  document.addEventListener("htmx:config:request", function (evt) {
    const request = evt.detail && evt.detail.ctx && evt.detail.ctx.request;
    if (!request || String(request.method || "GET").toUpperCase() === "GET") return;
    // Never hand the token to another origin, whatever an attribute says.
    if (!sameOrigin(request.action)) return;
    const value = token();
    if (value) request.headers["X-CSRFToken"] = value;
  });
})();
