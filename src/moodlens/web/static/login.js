// Login page: a login URL carries the token after "#", which the browser never sends to any server.
// Take it from there, drop it from the address bar and history, and post it with the form. Also when the
// login URL is opened while this page is already shown (only the part after "#" changes: no reload).
"use strict";
(() => {
  function signInFromFragment() {
    const token = new URLSearchParams(location.hash.slice(1)).get("token");
    if (!token) return;
    history.replaceState(null, "", location.pathname + location.search);
    const form = document.getElementById("login-form");
    form.elements.token.value = token;
    form.submit();
  }
  if (!document.getElementById("login-error")) signInFromFragment();
  window.addEventListener("hashchange", signInFromFragment);
})();
