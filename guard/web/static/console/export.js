// The audit export with progress: fetch the JSON Lines, count the lines as they arrive (the
// server says how many entries follow in X-Entry-Count), then hand the result to the browser
// as a download. Without this script the button is a plain link that downloads the same file.
"use strict";

(function () {
  const link = document.getElementById("export-audit");
  const box = document.getElementById("export-progress");
  const bar = document.getElementById("export-bar");
  const status = document.getElementById("export-status");
  if (!link || !bar || !status || !window.fetch || !window.ReadableStream) {
    return;
  }
  const number = new Intl.NumberFormat("en");
  let running = false;

  function say(text) {
    status.textContent = text;
  }

  async function download(event) {
    event.preventDefault();
    if (running) {
      return;
    }
    running = true;
    link.setAttribute("aria-disabled", "true");
    box.hidden = false;
    say("Starting the download…");
    try {
      const response = await fetch(link.href, { credentials: "same-origin" });
      if (response.status === 401) {
        say("Your session has ended: sign in again, then download.");
        return;
      }
      if (!response.ok || !response.body) {
        say("The export failed (HTTP " + response.status + "). Try again.");
        return;
      }
      const counted = response.headers.get("X-Entry-Count");
      const total = /^[0-9]+$/.test(counted || "") ? Number(counted) : 0;
      bar.max = Math.max(total, 1);
      const reader = response.body.getReader();
      const chunks = [];
      let lines = 0;
      let shown = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          break;
        }
        chunks.push(value);
        for (let i = 0; i < value.length; i += 1) {
          if (value[i] === 10) {
            lines += 1;
          }
        }
        // The closing checkpoint line is not an entry (counted once the download is whole).
        const entries = Math.min(lines, total);
        bar.value = entries;
        // A live region read on every chunk would be noise: at most every 2 % or so.
        if (entries === total || entries - shown >= Math.max(1, Math.floor(total / 50))) {
          shown = entries;
          say(number.format(entries) + " of " + number.format(total) + " entries");
        }
      }
      const blob = new Blob(chunks, { type: "application/jsonl" });
      // A complete export ends with the latest checkpoint; one cut short by the server ends
      // with {"export_failed": …}, one cut by the network with an entry or half a line.
      const text = await blob.text();
      const last = text.trimEnd().split("\n").pop() || "";
      let closing = null;
      try {
        closing = JSON.parse(last);
      } catch (error) {
        closing = null;
      }
      const entries = Math.max(lines - 1, 0);
      if (!closing || !("latest_checkpoint" in closing)) {
        const why = closing && closing.export_failed ? closing.export_failed : "it was cut short";
        say("The export is incomplete (" + why + "); nothing was saved. Try again.");
        return;
      }
      // A closing line alone does not make it whole: lines lost (or added) in between, by a
      // proxy or a broken server, leave a file that ends well but is not the log's export.
      if (counted === null || entries !== total) {
        const why = counted === null
          ? "the server did not say how many entries to expect"
          : "it has " + number.format(entries) + " entries, the server said "
            + number.format(total);
        say("The export is incomplete (" + why + "); nothing was saved. Try again.");
        return;
      }
      bar.value = entries;
      say("Downloaded " + number.format(entries) + " of " + number.format(total) + " entries.");
      const url = URL.createObjectURL(blob);
      const save = document.createElement("a");
      save.href = url;
      save.download = link.dataset.filename || "audit.jsonl";
      save.hidden = true;
      document.body.appendChild(save);
      save.click();
      save.remove();
      // Revoked after the browser has taken the file, not before.
      setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
    } catch (error) {
      say("The download was interrupted: " + error.message + ". Try again.");
    } finally {
      running = false;
      link.removeAttribute("aria-disabled");
    }
  }

  link.addEventListener("click", download);
})();
