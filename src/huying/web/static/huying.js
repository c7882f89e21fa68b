/* 呼应 · progressive enhancement for the console. Every page works without it.
 *
 * - [data-refresh]: poll the fragment URL with If-None-Match; the server answers 304 until
 *   the list changes, and only then is the region re-rendered (no full reload).
 * - form[data-confirm]: ask before destructive actions.
 * - form[data-autosubmit]: filters apply as soon as a choice changes.
 * - forms are submitted once: the button is disabled while the page loads.
 */
(function () {
  "use strict";

  function updateBadges(region) {
    var marker = region.querySelector("[data-count]");
    if (!marker) return;
    var count = marker.getAttribute("data-count");
    var heading = document.querySelector("[data-count-of='" + region.id + "']");
    if (heading) heading.textContent = count;
    var key = marker.getAttribute("data-count-for");
    if (!key) return;
    var badge = document.querySelector("[data-badge='" + key + "']");
    if (badge) {
      badge.textContent = count;
      badge.classList.toggle("zero", count === "0");
    }
  }

  function busy(region) {
    // Never replace a region while the user is typing in it or has a form open in it.
    var active = document.activeElement;
    return !!(active && region.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName));
  }

  function poll(region) {
    var url = region.getAttribute("data-refresh");
    var etag = region.getAttribute("data-etag") || "";
    var every = parseInt(region.getAttribute("data-every") || "15000", 10);
    var stopped = false;

    function schedule() {
      if (!stopped) window.setTimeout(tick, every);
    }

    function tick() {
      if (document.hidden || busy(region)) return schedule();
      window
        .fetch(url, {
          headers: { "If-None-Match": etag, "X-Requested-With": "huying" },
          credentials: "same-origin",
          cache: "no-store",
          redirect: "error"
        })
        .then(function (response) {
          if (response.status === 304) return null;
          if (response.status === 401 || response.status === 403 || response.status === 404) {
            stopped = true;  // signed out or no longer allowed: a reload will say why
            return null;
          }
          if (!response.ok) return null;
          etag = response.headers.get("ETag") || "";
          return response.text();
        })
        .then(function (html) {
          if (html === null || html === undefined) return;
          region.innerHTML = html;
          region.setAttribute("data-etag", etag);
          region.setAttribute("data-refreshed", String(Date.now()));
          updateBadges(region);
        })
        .catch(function () { /* offline for a moment: try again next time */ })
        .then(schedule);
    }

    schedule();
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    window.setTimeout(function () {
      var buttons = form.querySelectorAll("button[type=submit], button:not([type])");
      for (var i = 0; i < buttons.length; i++) buttons[i].disabled = true;
    }, 0);
  });

  document.addEventListener("change", function (event) {
    var form = event.target.form;
    if (form && form.hasAttribute("data-autosubmit") && event.target.tagName === "SELECT") {
      form.submit();
    }
  });

  var regions = document.querySelectorAll("[data-refresh]");
  for (var i = 0; i < regions.length; i++) poll(regions[i]);
})();
