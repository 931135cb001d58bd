// Login page: a login URL carries the token after "#", which the browser never sends to any server.
// Take it from there, drop it from the address bar and history, and post it with the form.
"use strict";
(() => {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (!token || document.getElementById("login-error")) return;
  history.replaceState(null, "", location.pathname + location.search);
  const form = document.getElementById("login-form");
  form.elements.token.value = token;
  form.submit();
})();
