// Empties a form marked data-reset-after once htmx has sent it and the server took it, so
// a file input does not go on offering the file it has just uploaded.
(function () {
  "use strict";

  document.addEventListener("htmx:after:request", function (evt) {
    const elt = evt.target;
    const form = elt && elt.closest ? elt.closest("form[data-reset-after]") : null;
    const response = evt.detail && evt.detail.ctx && evt.detail.ctx.response;
    if (form && response && response.status >= 200 && response.status < 300) form.reset();
  });
})();
