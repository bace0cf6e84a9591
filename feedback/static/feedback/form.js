/* Questionnaire pages: show a conditional question only when its condition holds, and
   move focus to the error summary. The server checks the same conditions at every step,
   so the form works the same without this script. */
(function () {
  "use strict";

  function currentValues(form, name) {
    var values = [];
    form.querySelectorAll("[name='" + name + "']").forEach(function (input) {
      if (input.disabled) return;
      if ((input.type === "radio" || input.type === "checkbox") && !input.checked) return;
      if (input.value !== "") values.push(input.value);
    });
    return values;
  }

  function update(form) {
    // Conditions name earlier questions, so one pass in page order settles chains.
    form.querySelectorAll("[data-show-if]").forEach(function (box) {
      var allowed = JSON.parse(box.getAttribute("data-show-if-values")).map(String);
      var shown = currentValues(form, box.getAttribute("data-show-if")).some(function (v) {
        return allowed.indexOf(v) !== -1;
      });
      box.hidden = !shown;
      box.querySelectorAll("input, select, textarea").forEach(function (input) {
        input.disabled = !shown;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.documentElement.classList.add("js");
    var form = document.querySelector("form.questionnaire");
    if (form) {
      update(form);
      form.addEventListener("change", function () { update(form); });
    }
    var summary = document.getElementById("error-summary");
    if (summary) summary.focus();
  });
})();
