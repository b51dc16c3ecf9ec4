from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from billing.models import Organization
from billing.services.organization import EDITABLE_FIELDS
from tenants.validators import validate_country


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["external_id", *EDITABLE_FIELDS, "status", "created_at", "updated_at"]
        read_only_fields = ["status", "created_at", "updated_at"]

    def validate_country(self, value):
        # The model's field validator checks the shape (two capitals); this, which codes exist.
        if value:
            try:
                validate_country(value)
            except DjangoValidationError as exc:
                raise serializers.ValidationError(exc.messages[0], code="invalid_country") from None
        return value

    def validate_metadata(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("metadata must be a JSON object.", code="invalid_metadata")
        return value


class OrganizationUpdateSerializer(OrganizationSerializer):
    class Meta(OrganizationSerializer.Meta):
        read_only_fields = ["external_id", "status", "created_at", "updated_at"]
