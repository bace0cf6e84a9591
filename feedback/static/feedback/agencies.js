/* The agency list of a form narrowed to the province or city chosen, as soon as it is
   chosen. The options of every unit wait in <template id="agency-options">; the hidden
   field agencies_of tells the server which unit's list the citizen saw, so that it does
   not ask again in a second step (what happens without this script). The server refuses
   an agency of another unit either way. */
(function () {
  "use strict";

  function narrow(form) {
    var unit = form.querySelector("select[name='unit']");
    var field = form.querySelector("[data-agency-field]");
    var template = form.querySelector("template#agency-options");
    var marker = form.querySelector("[data-agencies-of]");
    if (!unit || !field || !template || !marker) return;
    var select = field.querySelector("select[name='agency']");
    var previous = select.value;
    while (select.options.length > 1) select.remove(1);
    template.content.querySelectorAll("option").forEach(function (option) {
      if (option.getAttribute("data-unit") === unit.value) {
        select.appendChild(option.cloneNode(true));
      }
    });
    select.value = previous;
    if (select.value !== previous) select.value = "";
    field.hidden = select.options.length < 2;
    marker.value = unit.value;
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form").forEach(function (form) {
      var unit = form.querySelector("select[name='unit']");
      if (!unit || !form.querySelector("[data-agency-field]")) return;
      narrow(form);
      unit.addEventListener("change", function () { narrow(form); });
    });
  });
})();
