// Reloads a page that shows running work (an element with data-reload, in
// milliseconds) until the server renders it finished. No inline script:
// the portal's CSP allows only this origin's files.
"use strict";
(function () {
  var el = document.querySelector("[data-reload]");
  if (!el) return;
  var ms = parseInt(el.getAttribute("data-reload"), 10) || 1000;
  setTimeout(function () { location.reload(); }, ms);
})();
