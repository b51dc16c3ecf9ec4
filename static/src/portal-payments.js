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

  function cardForm(box) {
    const stripe = Stripe(box.dataset.publishableKey);
    const card = stripe.elements().create("card");
    card.mount(box.querySelector("[data-card-element]"));
    const done = box.querySelector("[data-card-done]");
    const errors = box.querySelector("[data-card-errors]");
    const button = box.querySelector("[data-card-submit]");
    done.addEventListener("submit", async (event) => {
      if (done.elements.setup.value) return; // the card is saved: post the setup's id
      event.preventDefault();
      errors.textContent = "";
      button.setAttribute("aria-busy", "true");
      button.disabled = true;
      try {
        const response = await fetch(box.dataset.setupUrl, {
          method: "POST",
          headers: { "X-CSRFToken": csrf(done) },
          credentials: "same-origin",
        });
        const body = await response.json();
        if (!response.ok) throw new Error(body.error ? body.error.message : "The card could not be saved.");
        const result = await stripe.confirmCardSetup(body.client_secret, { payment_method: { card: card } });
        if (result.error) throw new Error(result.error.message || "The card could not be saved.");
        done.elements.setup.value = result.setupIntent.id;
        done.submit();
      } catch (error) {
        errors.textContent = error.message;
        button.removeAttribute("aria-busy");
        button.disabled = false;
      }
    });
  }

  function sepaForm(box) {
    // A SEPA Direct Debit mandate: the IBAN is typed into the gateway's element; the customer
    // accepts the mandate text shown with it by saving.
    const stripe = Stripe(box.dataset.publishableKey);
    const iban = stripe.elements().create("iban", { supportedCountries: ["SEPA"] });
    iban.mount(box.querySelector("[data-iban-element]"));
    const done = box.querySelector("[data-sepa-done]");
    const errors = box.querySelector("[data-sepa-errors]");
    const button = box.querySelector("[data-sepa-submit]");
    done.addEventListener("submit", async (event) => {
      if (done.elements.setup.value) return; // the mandate is saved: post the setup's id
      event.preventDefault();
      errors.textContent = "";
      button.setAttribute("aria-busy", "true");
      button.disabled = true;
      try {
        const response = await fetch(box.dataset.setupUrl, {
          method: "POST",
          headers: { "X-CSRFToken": csrf(done), "Content-Type": "application/x-www-form-urlencoded" },
          body: "type=sepa_debit",
          credentials: "same-origin",
        });
        const body = await response.json();
        if (!response.ok) throw new Error(body.error ? body.error.message : "The mandate could not be saved.");
        const result = await stripe.confirmSepaDebitSetup(body.client_secret, {
          payment_method: {
            sepa_debit: iban,
            billing_details: {
              name: box.querySelector("[data-sepa-name]").value,
              email: box.querySelector("[data-sepa-email]").value,
            },
          },
        });
        if (result.error) throw new Error(result.error.message || "The mandate could not be saved.");
        done.elements.setup.value = result.setupIntent.id;
        done.submit();
      } catch (error) {
        errors.textContent = error.message;
        button.removeAttribute("aria-busy");
        button.disabled = false;
      }
    });
  }

  function achForm(box) {
    // A US bank account for ACH debits: the gateway's own dialog collects the account
    // (collectBankAccountForSetup), then the SetupIntent is confirmed, which accepts the mandate
    // shown with the form.
    const stripe = Stripe(box.dataset.publishableKey);
    const done = box.querySelector("[data-ach-done]");
    const errors = box.querySelector("[data-ach-errors]");
    const button = box.querySelector("[data-ach-submit]");
    done.addEventListener("submit", async (event) => {
      if (done.elements.setup.value) return;
      event.preventDefault();
      errors.textContent = "";
      button.setAttribute("aria-busy", "true");
      button.disabled = true;
      try {
        const response = await fetch(box.dataset.setupUrl, {
          method: "POST",
          headers: { "X-CSRFToken": csrf(done), "Content-Type": "application/x-www-form-urlencoded" },
          body: "type=us_bank_account",
          credentials: "same-origin",
        });
        const body = await response.json();
        if (!response.ok) throw new Error(body.error ? body.error.message : "The bank account could not be saved.");
        const collected = await stripe.collectBankAccountForSetup({
          clientSecret: body.client_secret,
          params: {
            payment_method_type: "us_bank_account",
            payment_method_data: {
              billing_details: {
                name: box.querySelector("[data-ach-name]").value,
                email: box.querySelector("[data-ach-email]").value,
              },
            },
          },
        });
        if (collected.error) throw new Error(collected.error.message || "The bank account could not be saved.");
        const result = await stripe.confirmUsBankAccountSetup(body.client_secret);
        if (result.error) throw new Error(result.error.message || "The bank account could not be saved.");
        done.elements.setup.value = result.setupIntent.id;
        done.submit();
      } catch (error) {
        errors.textContent = error.message;
        button.removeAttribute("aria-busy");
        button.disabled = false;
      }
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
