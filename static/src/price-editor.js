// The plan editor's tier editor (admin "Add plan" / "New version").
//
// Each charge's price is a JSON textarea, and that textarea is what the form submits, so the page
// works without JavaScript. This script puts an editor in front of every textarea marked
// [data-price-editor] (model, tier rows, package and percentage fields), keeps the two in sync both
// ways, and shows a worked example of the price as it is edited. The figures come from the real
// pricing engine through the admin's price-preview endpoint (POST, CSRF token from the form);
// nothing is priced here, the script only lays the answer out.
(function () {
  "use strict";

  const form = document.getElementById("plan_editor_form");
  if (!form || !window.fetch) return;
  const previewUrl = form.dataset.previewUrl;
  const csrfInput = form.querySelector("input[name=csrfmiddlewaretoken]");
  const DEBOUNCE_MS = 300;

  const MODELS = [
    ["per_unit", "Per unit"],
    ["graduated", "Graduated tiers"],
    ["volume", "Volume tiers"],
    ["package", "Package"],
    ["percentage", "Percentage of each event"],
  ];
  const EXPLAIN = {
    per_unit: "Every unit costs the unit amount.",
    graduated:
      "Each unit is priced at the tier it falls in, and the flat amount of every tier reached is added " +
      "(the first tier's even at zero usage). Bounds are inclusive.",
    volume:
      "All units are priced at the tier the total falls in, plus that tier's flat amount. Crossing a bound " +
      "re-prices every unit, so the total can drop. Bounds are inclusive.",
    package: "The package amount for every started package of units after the free units; no usage costs nothing.",
    percentage:
      "A percentage of each event's amount plus a fixed fee per paid event. The first free events and the " +
      "first free amount are free, whichever runs out first; the per-event minimum and maximum bound each paid event.",
  };
  // [key, label, hint, kind] where kind is "amount" (decimal string), "nullable" (blank = none) or "int".
  const FIELDS = {
    per_unit: [["unit_amount", "Unit amount", "per unit, such as 0.002", "amount"]],
    package: [
      ["package_size", "Package size", "units in one package", "amount"],
      ["package_amount", "Package amount", "per started package", "amount"],
      ["free_units", "Free units", "before the first package", "amount"],
    ],
    percentage: [
      ["rate", "Rate (%)", "2.9 means 2.9 %", "amount"],
      ["fixed_amount", "Fixed amount", "per paid event", "amount"],
      ["free_events", "Free events", "a whole number", "int"],
      ["free_amount", "Free amount", "event value that is free", "amount"],
      ["min_amount_per_event", "Minimum per event", "blank for none", "nullable"],
      ["max_amount_per_event", "Maximum per event", "blank for none", "nullable"],
    ],
  };

  // --- small helpers -------------------------------------------------------------------------

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  // "1234567.5" -> "1,234,567.5": display only, the figures stay the engine's strings.
  function grouped(text) {
    if (typeof text !== "string" || !/^-?\d+(\.\d+)?$/.test(text)) return String(text);
    const [whole, fraction] = text.split(".");
    return whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + (fraction ? "." + fraction : "");
  }

  // Order of two plain non-negative decimal strings without going through floats.
  function compareDecimals(a, b) {
    const [ai, af = ""] = a.split(".");
    const [bi, bf = ""] = b.split(".");
    const width = Math.max(af.length, bf.length);
    const left = ai.replace(/^0+(?=\d)/, "") + af.padEnd(width, "0");
    const right = bi.replace(/^0+(?=\d)/, "") + bf.padEnd(width, "0");
    if (left.length !== right.length) return left.length < right.length ? -1 : 1;
    return left < right ? -1 : left > right ? 1 : 0;
  }

  function pathParts(path) {
    return path.replace(/\[(\d+)\]/g, ".$1").split(".").filter(Boolean);
  }

  function setAt(doc, path, value) {
    const parts = pathParts(path);
    let target = doc;
    for (const part of parts.slice(0, -1)) target = target[part];
    target[parts[parts.length - 1]] = value;
  }

  function getAt(doc, path) {
    let target = doc;
    for (const part of pathParts(path)) {
      if (target === null || typeof target !== "object") return undefined;
      target = target[part];
    }
    return target;
  }

  function shown(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  // What a typed value becomes in the document: decimals stay strings (the contract refuses
  // JSON numbers for amounts), a count of events is a JSON integer, blank optional fields are null.
  function parsed(text, kind) {
    const value = text.trim().replace(/[,_\s]/g, "");
    if (kind === "nullable") return value === "" ? null : value;
    if (kind === "int") return /^\d+$/.test(value) ? parseInt(value, 10) : value;
    return value;
  }

  function currencyNow() {
    if (form.dataset.currency) return form.dataset.currency;
    const input = document.getElementById(form.dataset.currencyInput);
    return input ? input.value.trim().toUpperCase() : "";
  }

  function defaults(model, previous) {
    const minimum = previous && "minimum_amount" in previous ? previous.minimum_amount : null;
    const tiered = model === "graduated" || model === "volume";
    if (tiered && previous && Array.isArray(previous.tiers)) {
      return { model, tiers: previous.tiers, minimum_amount: minimum };
    }
    const bodies = {
      per_unit: { unit_amount: "0" },
      graduated: {
        tiers: [
          { up_to: "1000", unit_amount: "0", flat_amount: "0" },
          { up_to: null, unit_amount: "0.01", flat_amount: "0" },
        ],
      },
      volume: {
        tiers: [
          { up_to: "1000", unit_amount: "0.02", flat_amount: "0" },
          { up_to: null, unit_amount: "0.01", flat_amount: "0" },
        ],
      },
      package: { package_size: "1000", package_amount: "5.00", free_units: "0" },
      percentage: {
        rate: "2.9",
        fixed_amount: "0.30",
        free_events: 0,
        free_amount: "0",
        min_amount_per_event: null,
        max_amount_per_event: null,
      },
    };
    return { model, ...bodies[model], minimum_amount: minimum };
  }

  // A quantity worth pricing by default: past the last bound, or a couple of packages.
  function defaultQuantity(doc) {
    if (doc && Array.isArray(doc.tiers)) {
      const bounds = doc.tiers.map((t) => t && t.up_to).filter((b) => typeof b === "string" && /^\d+$/.test(b));
      if (bounds.length) {
        const last = BigInt(bounds[bounds.length - 1]);
        return String(last + last / 2n);
      }
    }
    if (doc && doc.model === "package" && /^\d+$/.test(String(doc.package_size))) {
      return String(BigInt(doc.package_size) * 2n + 1n);
    }
    return "1500";
  }

  // --- one editor per price textarea -----------------------------------------------------------

  function PriceEditor(textarea) {
    let doc = null;
    let timer = null;
    let controller = null;
    let sequence = 0;
    let quantityTouched = false;

    const modelSelect = h(
      "select",
      { class: "pe-model", "aria-label": "Pricing model" },
      h("option", { value: "", text: "— choose a pricing model —" }),
      MODELS.map(([value, label]) => h("option", { value, text: label })),
    );
    const explain = h("p", { class: "help pe-explain" });
    const fields = h("div", { class: "pe-fields" });
    const jsonError = h("p", { class: "pe-json-error", role: "alert", hidden: true });
    const details = h("details", { class: "pe-json" }, h("summary", { text: "JSON document (what is saved)" }));
    const quantityInput = h("input", {
      type: "text",
      inputmode: "decimal",
      class: "pe-quantity",
      "aria-label": "Quantity for the example",
    });
    const eventsInput = h("textarea", {
      class: "pe-events",
      rows: 3,
      "aria-label": "Event amounts for the example",
      spellcheck: "false",
    });
    eventsInput.value = "120.00\n35.50\n9.99";
    const quantityRow = h("label", { class: "pe-usage" }, "Your quantity ", quantityInput);
    const eventsRow = h(
      "label",
      { class: "pe-usage", hidden: true },
      "Event amounts (one per line, in event order) ",
      eventsInput,
    );
    const status = h("div", { class: "pe-status", role: "status", "aria-live": "polite" });
    const warning = h("div", { class: "pe-warning", role: "alert", hidden: true });
    const tbody = h("tbody");
    const table = h(
      "table",
      { class: "pe-table", hidden: true },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", { text: "Quantity" }),
          h("th", { text: "How it is priced" }),
          h("th", { class: "pe-num", text: "Exact amount" }),
          h("th", { class: "pe-num pe-rounded-head", text: "Invoice line" }),
        ),
      ),
      tbody,
    );
    const example = h(
      "div",
      { class: "pe-example" },
      h("h3", { text: "Worked example" }),
      quantityRow,
      eventsRow,
      status,
      warning,
      table,
    );
    const root = h(
      "div",
      { class: "pe" },
      h("div", { class: "pe-model-row" }, h("label", { text: "Model" }), modelSelect),
      explain,
      fields,
      jsonError,
      details,
      example,
    );
    textarea.parentNode.insertBefore(root, textarea);
    details.append(textarea);

    function writeJSON() {
      textarea.value = doc ? JSON.stringify(doc, null, 2) : "";
      jsonError.hidden = true;
    }

    function input(path, kind, hint, extra) {
      const node = h("input", {
        type: "text",
        inputmode: kind === "int" ? "numeric" : "decimal",
        placeholder: hint,
        "data-path": path,
        "aria-label": path,
        ...(extra || {}),
      });
      node.value = shown(getAt(doc, path));
      node.addEventListener("input", () => {
        setAt(doc, path, parsed(node.value, kind));
        if (/\.up_to$/.test(path)) refreshTierStarts();
        edited();
      });
      return node;
    }

    function refreshTierStarts() {
      fields.querySelectorAll("[data-tier-start]").forEach((cell) => {
        const index = parseInt(cell.dataset.tierStart, 10);
        const bound = index === 0 ? null : doc.tiers[index - 1] && doc.tiers[index - 1].up_to;
        cell.textContent = index === 0 ? "0" : "above " + grouped(shown(bound) || "?");
      });
    }

    function renderTiers() {
      if (!Array.isArray(doc.tiers)) doc.tiers = [];
      const tiers = doc.tiers;
      const rows = tiers.map((tier, index) => {
        const last = index === tiers.length - 1;
        const bound =
          last && tier && tier.up_to === null
            ? h("span", { class: "pe-unbounded", text: "no limit" })
            : input(`tiers[${index}].up_to`, "nullable", last ? "blank: no limit" : "such as 1000");
        const remove = h("button", {
          type: "button",
          class: "button pe-remove",
          title: "Remove this tier",
          "aria-label": `Remove tier ${index + 1}`,
          text: "✕",
          disabled: tiers.length === 1,
          onclick: () => {
            tiers.splice(index, 1);
            if (tiers.length) tiers[tiers.length - 1].up_to = null;
            renderFields();
            edited();
          },
        });
        return h(
          "tr",
          null,
          h("td", { text: String(index + 1) }),
          h("td", { "data-tier-start": String(index) }),
          h("td", null, bound),
          h("td", null, input(`tiers[${index}].unit_amount`, "amount", "0")),
          h("td", null, input(`tiers[${index}].flat_amount`, "amount", "0")),
          h("td", null, remove),
        );
      });
      const add = h("button", {
        type: "button",
        class: "button pe-add-tier",
        text: "Add tier",
        onclick: () => {
          const last = tiers[tiers.length - 1];
          const previous = tiers.length > 1 ? tiers[tiers.length - 2].up_to : "0";
          let bound = "";
          if (typeof previous === "string" && /^\d+$/.test(previous)) {
            bound = previous === "0" ? "1000" : String(BigInt(previous) * 10n);
          }
          const fresh = { up_to: bound, unit_amount: last ? shown(last.unit_amount) || "0" : "0", flat_amount: "0" };
          if (!last) fresh.up_to = null;
          tiers.splice(Math.max(tiers.length - 1, 0), 0, fresh);
          renderFields();
          edited();
        },
      });
      fields.append(
        h(
          "table",
          { class: "pe-tiers" },
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              h("th", { text: "Tier" }),
              h("th", { text: "From" }),
              h("th", { text: "Up to (inclusive)" }),
              h("th", { text: "Unit amount" }),
              h("th", { text: "Flat amount" }),
              h("th", null),
            ),
          ),
          h("tbody", null, rows),
        ),
        h("p", null, add),
      );
      refreshTierStarts();
    }

    function renderFields() {
      fields.replaceChildren();
      modelSelect.value = doc && MODELS.some(([m]) => m === doc.model) ? doc.model : "";
      explain.textContent = doc ? EXPLAIN[doc.model] || "" : "Choose a model to build the price.";
      example.hidden = !doc;
      if (!doc || !EXPLAIN[doc.model]) return;
      if (doc.model === "graduated" || doc.model === "volume") renderTiers();
      for (const [key, label, hint, kind] of FIELDS[doc.model] || []) {
        fields.append(h("label", { class: "pe-field" }, h("span", { text: label }), input(key, kind, hint)));
      }
      fields.append(
        h(
          "label",
          { class: "pe-field" },
          h("span", { text: "Minimum amount per period" }),
          input("minimum_amount", "nullable", "blank for none"),
        ),
      );
      const percentage = doc.model === "percentage";
      quantityRow.hidden = percentage;
      eventsRow.hidden = !percentage;
      if (!quantityTouched) quantityInput.value = defaultQuantity(doc);
    }

    function edited() {
      writeJSON();
      schedule();
    }

    function readJSON() {
      const text = textarea.value.trim();
      if (text === "") {
        doc = null;
        jsonError.hidden = true;
        renderFields();
        schedule();
        return;
      }
      try {
        const value = JSON.parse(text);
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
          throw new Error("a price is a JSON object");
        }
        doc = value;
        jsonError.hidden = true;
        renderFields();
        schedule();
      } catch (error) {
        jsonError.textContent = "The JSON document is not valid (" + error.message + "); the editor shows the last valid one.";
        jsonError.hidden = false;
        details.open = true;
      }
    }

    function clearMarks() {
      root.querySelectorAll(".pe-invalid").forEach((node) => node.classList.remove("pe-invalid"));
    }

    function showError(error) {
      table.hidden = true;
      warning.hidden = true;
      const where = error.path ? error.path + ": " : "";
      status.className = "pe-status pe-error";
      status.textContent = where + error.message;
      const inPrice = (error.path || "").replace(/^price\.?/, "");
      const target =
        error.path === "quantity"
          ? quantityInput
          : (error.path || "").startsWith("event_values")
            ? eventsInput
            : inPrice && root.querySelector(`[data-path="${CSS.escape(inPrice)}"]`);
      if (target) target.classList.add("pe-invalid");
    }

    function breakdownCell(result, currency) {
      const lines = result.breakdown.map((row) =>
        h("div", { class: "pe-line" }, h("span", { class: "pe-desc", text: row.description + ": " }), row.text),
      );
      if (result.minimum_true_up !== "0") {
        lines.push(
          h(
            "div",
            { class: "pe-line pe-trueup" },
            `Minimum true-up: ${grouped(result.minimum_true_up)} (invoice line ${grouped(result.rounded_minimum_true_up)} ${currency})`,
          ),
        );
      }
      return h("td", null, lines);
    }

    function resultRow(result, currency, options) {
      const label = options.label ? [h("div", { class: "pe-row-label", text: options.label })] : [];
      return h(
        "tr",
        { class: options.className || null },
        h("td", { class: "pe-num" }, grouped(result.quantity), label),
        breakdownCell(result, currency),
        h("td", { class: "pe-num", text: grouped(result.amount) }),
        h("td", { class: "pe-num pe-rounded", text: `${grouped(result.rounded_amount)} ${currency}` }),
      );
    }

    function showExample(data, events) {
      status.className = "pe-status";
      status.textContent = "";
      const currency = data.currency;
      table.querySelector(".pe-rounded-head").textContent = `Invoice line (${currency})`;
      const rows = [];
      let previous = null;
      for (const sample of data.samples) {
        const drop = previous !== null && compareDecimals(sample.amount, previous) < 0;
        rows.push(resultRow(sample, currency, { className: drop ? "pe-drop" : null, label: drop ? "▼ less than above" : "" }));
        previous = sample.amount;
      }
      const mine =
        events === null ? "your quantity" : `your ${events} event${events === 1 ? "" : "s"} (total value)`;
      rows.push(resultRow(data, currency, { className: "pe-mine", label: mine }));
      tbody.replaceChildren(...rows);
      table.hidden = false;
      if (data.volume_cliffs.length) {
        warning.replaceChildren(
          h("strong", { text: "Volume cliff. " }),
          `The total drops just past ${data.volume_cliffs.map(grouped).join(", ")} unit(s): crossing a bound ` +
            "re-prices every unit at the next tier, so a customer using a little more pays less. " +
            "Check that this is intended (a flat amount on the higher tier, or graduated tiers, avoid it).",
        );
        warning.hidden = false;
      } else {
        warning.hidden = true;
      }
    }

    function run() {
      clearMarks();
      if (!doc) {
        table.hidden = true;
        warning.hidden = true;
        status.className = "pe-status";
        status.textContent = "";
        return;
      }
      const body = { price: doc, currency: currencyNow() };
      let events = null;
      if (doc.model === "percentage") {
        body.event_values = eventsInput.value
          .split(/[\n,;]+/)
          .map((v) => v.trim().replace(/[_\s]/g, ""))
          .filter(Boolean);
        events = body.event_values.length;
      } else {
        body.quantity = quantityInput.value.trim().replace(/[,_\s]/g, "") || "0";
      }
      const mine = ++sequence;
      if (controller) controller.abort();
      controller = new AbortController();
      status.className = "pe-status pe-busy";
      status.textContent = "Computing…";
      fetch(previewUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRFToken": csrfInput ? csrfInput.value : "",
        },
        body: JSON.stringify(body),
        signal: controller.signal,
      })
        .then((response) => response.json().then((data) => ({ ok: response.ok, data })))
        .then(({ ok, data }) => {
          if (mine !== sequence) return;
          if (ok) showExample(data, events);
          else showError(data.error || { message: "The example could not be computed.", path: "" });
        })
        .catch((error) => {
          if (error.name === "AbortError" || mine !== sequence) return;
          showError({ message: "The example could not be computed (" + error.message + ").", path: "" });
        });
    }

    function schedule() {
      clearTimeout(timer);
      timer = setTimeout(run, DEBOUNCE_MS);
    }

    modelSelect.addEventListener("change", () => {
      doc = modelSelect.value ? defaults(modelSelect.value, doc) : null;
      renderFields();
      edited();
    });
    textarea.addEventListener("input", readJSON);
    quantityInput.addEventListener("input", () => {
      quantityTouched = true;
      schedule();
    });
    eventsInput.addEventListener("input", schedule);

    readJSON();
    if (!jsonError.hidden) details.open = true;
    return { refresh: schedule };
  }

  // --- the page ------------------------------------------------------------------------------

  const editors = [];
  function attach(scope) {
    scope.querySelectorAll("textarea[data-price-editor]").forEach((textarea) => {
      if (textarea.dataset.priceEditorReady) return;
      textarea.dataset.priceEditorReady = "1";
      editors.push(PriceEditor(textarea));
    });
  }
  attach(form);

  // The create form's currency is typed in; every example follows it.
  const currencyInput = form.dataset.currencyInput && document.getElementById(form.dataset.currencyInput);
  if (currencyInput) currencyInput.addEventListener("input", () => editors.forEach((editor) => editor.refresh()));

  // "Add another charge" clones the formset's empty form (Django's __prefix__ convention).
  const addButton = form.querySelector("[data-add-charge]");
  const template = document.getElementById("charge-empty-form");
  const total = form.querySelector("input[name$='-TOTAL_FORMS']");
  const initial = form.querySelector("input[name$='-INITIAL_FORMS']");
  if (addButton && template && total && initial) {
    addButton.hidden = false;
    // With the button at hand, the blank charge the server adds for pages without JavaScript is
    // clutter when other charges are there: drop trailing untouched extra forms (the formset
    // ignores them anyway), keeping the form indices contiguous.
    const charges = [...form.querySelectorAll("#charges > [data-charge-form]")];
    while (charges.length > 1 && charges.length - 1 >= parseInt(initial.value, 10)) {
      const last = charges[charges.length - 1];
      const fields = last.querySelectorAll("input[name]:not([type=checkbox]), textarea[name], select[name]");
      const untouched = [...fields].every((field) => field.value === "");
      if (!untouched || last.querySelector(".errorlist")) break;
      last.remove();
      charges.pop();
      total.value = String(charges.length);
    }
    addButton.addEventListener("click", () => {
      const index = parseInt(total.value, 10);
      const holder = document.createElement("div");
      holder.innerHTML = template.innerHTML.replace(/__prefix__/g, String(index));
      const fieldset = holder.firstElementChild;
      fieldset.querySelector("h2").textContent = "Charge " + (index + 1);
      document.getElementById("charges").append(fieldset);
      total.value = String(index + 1);
      attach(fieldset);
    });
  }

  // A charge marked for deletion is greyed out so the seller sees it will not be saved.
  form.addEventListener("change", (event) => {
    if (event.target.name && /-DELETE$/.test(event.target.name)) {
      const fieldset = event.target.closest("[data-charge-form]");
      if (fieldset) fieldset.classList.toggle("pe-deleted", event.target.checked);
    }
  });
})();
