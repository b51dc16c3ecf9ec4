// Payment pages of the portal (templates/portal/payment_methods.html, pay.html). Card details
// and IBANs are typed only into the gateway's own elements (Stripe.js, loaded from the configured
// URL with the tenant's publishable key): the browser confirms a SetupIntent with the gateway directly,
// and the only thing posted to our server is the setup's id (the server asks the gateway). A payment that needs 3-D
// Secure is finished with the gateway's confirmCardPayment, then the server asks the gateway.
(function () {
  "use strict";

  function csrf(form) {
    return form.querySelector("input[name=csrfmiddlewaretoken]").value;
  }

  function failIf(result, failure) {
    if (result.error) throw new Error(result.error.message || failure);
    return result;
  }

  // The one shape of every "save a method" form: ask our server for a SetupIntent of the given
  // type, let the gateway's own UI confirm it (`confirm`, per kind of method), then post only the
  // setup's id. `prefix` names the form's data attributes (data-<prefix>-done, -errors, -submit).
  function setupForm(box, prefix, type, failure, confirm) {
    const stripe = Stripe(box.dataset.publishableKey);
    const done = box.querySelector(`[data-${prefix}-done]`);
    const errors = box.querySelector(`[data-${prefix}-errors]`);
    const button = box.querySelector(`[data-${prefix}-submit]`);
    const mounted = confirm.mount ? confirm.mount(stripe) : null;
    done.addEventListener("submit", async (event) => {
      if (done.elements.setup.value) return; // the method is saved: post the setup's id
      event.preventDefault();
      errors.textContent = "";
      button.setAttribute("aria-busy", "true");
      button.disabled = true;
      try {
        const headers = { "X-CSRFToken": csrf(done) };
        const request = { method: "POST", headers: headers, credentials: "same-origin" };
        if (type) {
          headers["Content-Type"] = "application/x-www-form-urlencoded";
          request.body = `type=${type}`;
        }
        const response = await fetch(box.dataset.setupUrl, request);
        const body = await response.json();
        if (!response.ok) throw new Error(body.error ? body.error.message : failure);
        const result = failIf(await confirm.run(stripe, body.client_secret, mounted), failure);
        done.elements.setup.value = result.setupIntent.id;
        done.submit();
      } catch (error) {
        errors.textContent = error.message;
        button.removeAttribute("aria-busy");
        button.disabled = false;
      }
    });
  }

  function cardForm(box) {
    setupForm(box, "card", null, "The card could not be saved.", {
      mount: (stripe) => {
        const card = stripe.elements().create("card");
        card.mount(box.querySelector("[data-card-element]"));
        return card;
      },
      run: (stripe, secret, card) => stripe.confirmCardSetup(secret, { payment_method: { card: card } }),
    });
  }

  function billingDetails(box, prefix) {
    return {
      name: box.querySelector(`[data-${prefix}-name]`).value,
      email: box.querySelector(`[data-${prefix}-email]`).value,
    };
  }

  function sepaForm(box) {
    // A SEPA Direct Debit mandate: the IBAN is typed into the gateway's element; the customer
    // accepts the mandate text shown with it by saving.
    setupForm(box, "sepa", "sepa_debit", "The mandate could not be saved.", {
      mount: (stripe) => {
        const iban = stripe.elements().create("iban", { supportedCountries: ["SEPA"] });
        iban.mount(box.querySelector("[data-iban-element]"));
        return iban;
      },
      run: (stripe, secret, iban) =>
        stripe.confirmSepaDebitSetup(secret, {
          payment_method: { sepa_debit: iban, billing_details: billingDetails(box, "sepa") },
        }),
    });
  }

  function achForm(box) {
    // A US bank account for ACH debits: the gateway's own dialog collects the account
    // (collectBankAccountForSetup), then the SetupIntent is confirmed, which accepts the mandate
    // shown with the form.
    const failure = "The bank account could not be saved.";
    setupForm(box, "ach", "us_bank_account", failure, {
      run: async (stripe, secret) => {
        failIf(
          await stripe.collectBankAccountForSetup({
            clientSecret: secret,
            params: {
              payment_method_type: "us_bank_account",
              payment_method_data: { billing_details: billingDetails(box, "ach") },
            },
          }),
          failure,
        );
        return stripe.confirmUsBankAccountSetup(secret);
      },
    });
  }

  function action(box) {
    const stripe = Stripe(box.dataset.publishableKey);
    const done = box.querySelector("[data-action-done]");
    let finished = false;
    done.addEventListener("submit", async (event) => {
      if (finished) return;
      event.preventDefault();
      // Whatever the gateway's UI answers, the server asks the gateway for the outcome.
      await stripe.confirmCardPayment(box.dataset.actionSecret);
      finished = true;
      done.submit();
    });
  }

  document.querySelectorAll("[data-card-form]").forEach(cardForm);
  document.querySelectorAll("[data-sepa-form]").forEach(sepaForm);
  document.querySelectorAll("[data-ach-form]").forEach(achForm);
  document.querySelectorAll("[data-action]").forEach(action);
})();
