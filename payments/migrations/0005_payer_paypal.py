from django.db import migrations, models


def paypal_payers_move(apps, schema_editor):
    """Payers made with PayPal as their one gateway (before the wallet sat beside Stripe's methods)
    keep their customer and token in the PayPal columns."""
    PaymentCustomer = apps.get_model("payments", "PaymentCustomer")
    for payer in PaymentCustomer.objects.filter(gateway="paypal"):
        payer.paypal_customer_id = payer.gateway_customer_id
        if payer.default_method_type == "paypal":
            payer.paypal_token_id = payer.default_payment_method_id
            payer.paypal_label = payer.default_method_label
        payer.gateway, payer.gateway_customer_id = "stripe", ""
        payer.save()


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0004_event_received"),
    ]

    operations = [
        migrations.AddField(
            model_name="paymentcustomer",
            name="paypal_customer_id",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="paymentcustomer",
            name="paypal_label",
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.AddField(
            model_name="paymentcustomer",
            name="paypal_setup_token_id",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="paymentcustomer",
            name="paypal_token_id",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.RunPython(paypal_payers_move, migrations.RunPython.noop),
    ]
