"""The outbox and webhooks in the Django admin. Outbox messages are read-only, with filters and a
"Retry now" action (dead ones start their attempts over). Webhook endpoints are written through
the services: the signing secret is shown once, in the message after creating or rotating, and
never again. Deliveries are the read-only attempt log, with a "Replay" action."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from core.models import OutboxMessage, WebhookDelivery, WebhookEndpoint
from core.services.outbox import outbox_retry
from core.services.webhook_endpoint import (
    webhook_delivery_replay,
    webhook_endpoint_create,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)
from core.services.webhook_http import TargetRefused, target_check
from core.webhook_events import EVENT_TYPES

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups


class _ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]  # generic only in the stubs
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(_ReadOnly):
    list_display = ["id", "kind", "key", "status", "attempts", "available_at", "created_at", "done_at", "short_error"]
    list_filter = ["status", "kind"]
    search_fields = ["=id", "key"]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]
    actions = ["retry_now"]

    @admin.display(description="Last error")
    def short_error(self, obj: OutboxMessage) -> str:
        return obj.last_error[:120]

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("core.change_outboxmessage")

    @admin.action(description="Retry now", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        count = outbox_retry(ids=list(queryset.values_list("id", flat=True)))
        skipped = queryset.count() - count
        note = f" ({skipped} done or in progress, left alone)" if skipped else ""
        self.message_user(request, f"{count} message(s) due now{note}.", messages.SUCCESS)


class WebhookEndpointForm(forms.ModelForm):  # type: ignore[type-arg]  # generic only in the stubs
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "enabled"]

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        try:
            target_check(url)
        except TargetRefused as exc:
            raise ValidationError(str(exc)) from None
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # generic only in the stubs
    form = WebhookEndpointForm
    list_display = ["id", "url", "description", "enabled", "disabled_reason", "failing_since", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["url", "description"]
    readonly_fields = ["disabled_reason", "disabled_at", "failing_since", "previous_secret_expires_at", "created_at"]
    actions = ["rotate_secret"]

    def get_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> _FieldGroups:
        fields: list[str | list[str] | tuple[str, ...]] = ["url", "description", "event_types"]
        return fields if obj is None else [*fields, "enabled", *self.readonly_fields]

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: WebhookEndpointForm, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            created = webhook_endpoint_create(
                url=data["url"], description=data["description"], event_types=data["event_types"]
            )
            obj.pk = created.endpoint.pk
            self.message_user(
                request,
                f"Signing secret (shown only now; store it with the receiver): {created.secret}",
                messages.WARNING,
            )
        else:
            webhook_endpoint_update(
                endpoint=obj,
                url=data["url"],
                description=data["description"],
                event_types=data["event_types"],
                enabled=data["enabled"],
            )

    def has_rotate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("core.change_webhookendpoint")

    @admin.action(description="Rotate the signing secret (the old one signs for an overlap)", permissions=["rotate"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            rotated = webhook_endpoint_rotate_secret(endpoint=endpoint)
            self.message_user(
                request,
                f"{endpoint.url}: new signing secret (shown only now): {rotated.secret}; the previous one "
                f"keeps signing until {rotated.endpoint.previous_secret_expires_at:%Y-%m-%d %H:%M} UTC.",
                messages.WARNING,
            )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(_ReadOnly):
    list_display = ["id", "message_id", "endpoint", "event_type", "attempt", "status_code", "latency_ms", "succeeded"]
    list_display += ["attempted_at"]
    list_filter = ["succeeded", "event_type", "endpoint"]
    search_fields = ["=message_id"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["replay"]

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("core.change_webhookendpoint")

    @admin.action(description="Replay (send the message again)", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        replayed = sum(webhook_delivery_replay(delivery=d) for d in queryset)
        self.message_user(request, f"{replayed} message(s) queued again.", messages.SUCCESS)
