/* Reorder the rows of an admin inline by dragging: the position inputs follow (1..n).
 * Typing a number works without this script; the server puts rows in order on save.
 * A row still empty (an extra or added row nobody filled in) gets no number, so that it
 * stays out of the save; once filled in it is put last unless given a number. */
"use strict";
(function () {
  function rows(group) {
    return Array.from(group.querySelectorAll("tbody tr.form-row:not(.empty-form)"));
  }
  function positionInput(row) {
    return row.querySelector("td.field-position input");
  }
  function used(row) {
    const id = row.querySelector("input[type=hidden][name$='-id']");
    if (id && id.value) return true;
    return Array.from(row.querySelectorAll("input[type=text], textarea")).some(function (field) {
      return field.value.trim() !== "" && !field.closest("td.field-position");
    });
  }
  function renumber(group) {
    let n = 0;
    rows(group).forEach(function (row) {
      const input = positionInput(row);
      const removed = row.querySelector("td.delete input[type=checkbox]:checked");
      if (input && !removed && used(row)) {
        n += 1;
        input.value = String(n);
      }
    });
  }
  function enable(row, group) {
    const input = positionInput(row);
    if (!input || row.querySelector(".drag-handle")) return;
    const handle = document.createElement("span");
    handle.className = "drag-handle";
    handle.textContent = "\u2630";
    handle.title = group.dataset.dragTitle || "";
    handle.setAttribute("aria-hidden", "true");
    input.parentNode.insertBefore(handle, input);
    handle.addEventListener("mousedown", function () { row.draggable = true; });
    row.addEventListener("dragstart", function (event) {
      group._dragged = row;
      row.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", input.name);
    });
    row.addEventListener("dragend", function () {
      row.draggable = false;
      row.classList.remove("dragging");
      group._dragged = null;
      renumber(group);
    });
    row.addEventListener("dragover", function (event) {
      const dragged = group._dragged;
      if (!dragged || dragged === row) return;
      event.preventDefault();
      const box = row.getBoundingClientRect();
      const after = event.clientY > box.top + box.height / 2;
      row.parentNode.insertBefore(dragged, after ? row.nextSibling : row);
    });
    row.addEventListener("drop", function (event) { event.preventDefault(); });
  }
  function setUp(group) {
    rows(group).forEach(function (row) { enable(row, group); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".reorderable").forEach(setUp);
  });
  document.addEventListener("formset:added", function (event) {
    const row = event.target;
    const group = row.closest(".reorderable");
    if (!group) return;
    enable(row, group);
  });
})();
