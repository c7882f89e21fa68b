/* 呼应 · 来电登记: the enterprise look-up as the dispatcher types. The form works without it
 * (a USCC typed, or a name the server matches and offers candidates for).
 *
 * [data-enterprise-lookup]: typing in its text box asks data-lookup?q=… (250 ms after the
 * last key, one answer at a time: an older answer never replaces a newer one) and shows the
 * enterprises it lists; picking one puts its USCC in the hidden field, its name in the box
 * and its contact in the contact fields left empty. Typing again forgets the pick.
 */
(function () {
  "use strict";

  var box = document.querySelector("[data-enterprise-lookup]");
  if (!box) return;
  var form = box.form || box.closest("form");
  var input = box.querySelector("input[name=enterprise]");
  var hidden = box.querySelector("input[name=enterprise_uscc]");
  var list = box.querySelector("[data-picks]");
  var chosen = box.querySelector("[data-chosen]");
  var url = box.getAttribute("data-lookup");
  var timer = null;
  var asked = 0;

  function show(open) {
    list.hidden = !open;
    input.setAttribute("aria-expanded", open ? "true" : "false");
  }

  function lookup(q) {
    var mine = ++asked;
    window
      .fetch(url + "?q=" + encodeURIComponent(q), {
        headers: { "X-Requested-With": "huying" },
        credentials: "same-origin",
        cache: "no-store",
        redirect: "error"
      })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null || mine !== asked) return;
        list.innerHTML = html;
        show(html.trim() !== "");
      })
      .catch(function () { /* offline for a moment: the form still takes a USCC */ });
  }

  function fill(name, value) {
    var field = form.querySelector("[data-contact='" + name + "']");
    if (field && !field.value.trim() && value) field.value = value;
  }

  function pick(button) {
    var name = button.getAttribute("data-name");
    var uscc = button.getAttribute("data-uscc");
    hidden.value = uscc;
    input.value = name;
    chosen.textContent = "已选择：" + name + "（" + uscc + "）";
    chosen.hidden = false;
    fill("name", button.getAttribute("data-contact-name"));
    fill("phone", button.getAttribute("data-contact-phone"));
    list.innerHTML = "";
    show(false);
    var candidates = box.querySelector("[data-candidates]");
    if (candidates) candidates.parentNode.removeChild(candidates);
    input.focus();
  }

  input.addEventListener("input", function () {
    hidden.value = "";
    chosen.textContent = "";
    chosen.hidden = true;
    var candidates = box.querySelector("[data-candidates]");
    if (candidates) candidates.parentNode.removeChild(candidates);
    window.clearTimeout(timer);
    var q = input.value.trim();
    if (!q) {
      asked++;  // an answer still on its way is for text no longer there
      list.innerHTML = "";
      show(false);
      return;
    }
    timer = window.setTimeout(function () { lookup(q); }, 250);
  });

  list.addEventListener("click", function (event) {
    var button = event.target.closest("[data-uscc]");
    if (button) pick(button);
  });

  // Arrow keys move between the box and the enterprises listed; Escape closes the list.
  box.addEventListener("keydown", function (event) {
    var buttons = Array.prototype.slice.call(list.querySelectorAll("[data-uscc]"));
    var at = buttons.indexOf(document.activeElement);
    if (event.key === "Escape" && !list.hidden) {
      show(false);
      input.focus();
      event.preventDefault();
    } else if (event.key === "ArrowDown" && buttons.length && !list.hidden) {
      buttons[Math.min(at + 1, buttons.length - 1)].focus();
      event.preventDefault();
    } else if (event.key === "ArrowUp" && at >= 0) {
      (at === 0 ? input : buttons[at - 1]).focus();
      event.preventDefault();
    }
  });
})();
