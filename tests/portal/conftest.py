from tests.payments.conftest import connected, fake_stripe, localstripe_url  # noqa: F401  (the payment pages' gateway)
