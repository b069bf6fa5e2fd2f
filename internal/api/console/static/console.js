// Progressive only: every form works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // The work list's filters apply as soon as one is chosen.
  document.querySelectorAll("form.filters select").forEach(function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
  });
  // A refund settled as succeeded needs the provider's reference; the
  // server checks it too.
  var form = document.querySelector("form.settle");
  if (!form) { return; }
  var ref = form.querySelector("input[name=provider_ref]");
  function sync() {
    var st = form.querySelector("input[name=state]:checked");
    ref.required = !!st && st.value === "succeeded";
  }
  form.querySelectorAll("input[name=state]").forEach(function (r) { r.addEventListener("change", sync); });
  sync();
});
