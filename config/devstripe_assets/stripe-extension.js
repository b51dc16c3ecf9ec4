// devstripe (config/devstripe.py): what localstripe's Stripe.js lacks, appended to it and served
// by the proxy at /js.stripe.com/v3/. Test support only, never loaded against real Stripe.
//
// - elements.create('iban') and confirmSepaDebitSetup(secret, {payment_method: {sepa_debit:
//   ibanElement, billing_details}}): the IBAN is typed into a frame of the proxy's origin, as
//   Stripe's own element is a frame of Stripe's, and the frame confirms the SetupIntent itself;
//   the page only ever hears "complete / invalid" and the setup's outcome, never the IBAN.
// - collectBankAccountForSetup({clientSecret, params}) and confirmUsBankAccountSetup(secret):
//   US ACH debit, with a modal frame standing in for Stripe's Financial Connections dialog
//   (routing and account number typed there, posted by the frame to the proxy).
(function () {
  "use strict";
  const BASE = LOCALSTRIPE_BASE_API;
  const ORIGIN = new URL(BASE).origin;
  const original = Stripe;
  let counter = 0;

  function frame(kind, apiKey, title) {
    const iframe = document.createElement("iframe");
    iframe.src = `${BASE}/_devstripe/elements/${kind}?key=${encodeURIComponent(apiKey)}&parent=${encodeURIComponent(location.origin)}`;
    iframe.title = title;
    iframe.name = `__privateStripeFrame${++counter}`;
    iframe.setAttribute("frameborder", "0");
    iframe.setAttribute("allowtransparency", "true");
    return iframe;
  }

  function ask(iframe, message) {
    // One request to a frame, one answer (matched by id).
    return new Promise((resolve) => {
      const id = `m${++counter}`;
      function listen(event) {
        if (event.origin !== ORIGIN || !event.data || event.data.id !== id) return;
        window.removeEventListener("message", listen);
        resolve(event.data.result);
      }
      window.addEventListener("message", listen);
      iframe.contentWindow.postMessage({ ...message, id }, ORIGIN);
    });
  }

  class IbanElement {
    constructor(apiKey, options) {
      this._apiKey = apiKey;
      this._options = options || {};
      this._listeners = {};
      this._iframe = null;
      this._onMessage = (event) => {
        if (!this._iframe || event.source !== this._iframe.contentWindow || event.origin !== ORIGIN) return;
        if (event.data && event.data.type === "change") {
          (this._listeners.change || []).forEach((handler) => handler(event.data.change));
        }
      };
    }
    mount(target) {
      const node = typeof target === "string" ? document.querySelector(target) : target;
      this._iframe = frame("iban", this._apiKey, "Secure IBAN input frame");
      Object.assign(this._iframe.style, { width: "100%", height: "4.5rem", border: "0", display: "block" });
      window.addEventListener("message", this._onMessage);
      node.appendChild(this._iframe);
    }
    unmount() {
      window.removeEventListener("message", this._onMessage);
      if (this._iframe) this._iframe.remove();
      this._iframe = null;
    }
    destroy() {
      this.unmount();
    }
    on(event, handler) {
      (this._listeners[event] = this._listeners[event] || []).push(handler);
    }
    focus() {
      if (this._iframe) this._iframe.focus();
    }
  }

  async function postJson(path, body) {
    const response = await fetch(`${BASE}${path}`, { method: "POST", body: JSON.stringify(body) });
    const result = await response.json().catch(() => ({}));
    if (response.status !== 200 || result.error) return { error: result.error || { message: "Request failed." } };
    return { ok: result };
  }

  Stripe = function (apiKey, options) {
    const stripe = original(apiKey, options);
    const elementsOf = stripe.elements;
    const sepaSetup = stripe.confirmSepaDebitSetup;
    stripe.elements = function (elementOptions) {
      const elements = elementsOf(elementOptions);
      const create = elements.create;
      elements.create = function (type, createOptions) {
        if (type === "iban") return new IbanElement(apiKey, createOptions);
        return create.call(this, type, createOptions);
      };
      return elements;
    };
    stripe.confirmSepaDebitSetup = async function (clientSecret, data) {
      const method = (data && data.payment_method) || {};
      if (!(method.sepa_debit instanceof IbanElement)) return sepaSetup(clientSecret, data);
      if (!method.sepa_debit._iframe) return { error: { message: "The IBAN element is not mounted." } };
      return ask(method.sepa_debit._iframe, {
        action: "confirm_sepa_debit_setup",
        clientSecret,
        billing_details: method.billing_details || {},
      });
    };
    stripe.collectBankAccountForSetup = function ({ clientSecret, params }) {
      // Stripe shows its Financial Connections dialog; this modal frame is its stand-in.
      return new Promise((resolve) => {
        const overlay = document.createElement("div");
        Object.assign(overlay.style, {
          position: "fixed", inset: "0", background: "rgba(0,0,0,.45)", zIndex: "2147483647",
          display: "flex", alignItems: "center", justifyContent: "center",
        });
        const iframe = frame("us_bank_account", apiKey, "Connect your bank account");
        Object.assign(iframe.style, { width: "min(26rem, 95vw)", height: "24rem", background: "#fff", border: "0" });
        overlay.appendChild(iframe);
        function listen(event) {
          if (event.source !== iframe.contentWindow || event.origin !== ORIGIN || !event.data) return;
          if (event.data.type === "ready") {
            iframe.contentWindow.postMessage(
              { action: "collect_bank_account", clientSecret, billing_details: (params && params.payment_method_data && params.payment_method_data.billing_details) || {} },
              ORIGIN,
            );
          } else if (event.data.type === "done") {
            window.removeEventListener("message", listen);
            overlay.remove();
            resolve(event.data.result);
          }
        }
        window.addEventListener("message", listen);
        document.body.appendChild(overlay);
      });
    };
    stripe.confirmUsBankAccountSetup = async function (clientSecret) {
      const seti = clientSecret.match(/^(seti_\w+)_secret_/)[1];
      const answer = await postJson(`/v1/setup_intents/${seti}/confirm`, { key: apiKey, client_secret: clientSecret });
      return answer.error ? { error: answer.error } : { setupIntent: answer.ok };
    };
    return stripe;
  };
})();
