from rest_framework import serializers

from billing.models import Organization
from billing.services.organization import EDITABLE_FIELDS


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["external_id", *EDITABLE_FIELDS, "status", "created_at", "updated_at"]
        read_only_fields = ["status", "created_at", "updated_at"]

    def validate_metadata(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("metadata must be a JSON object.", code="invalid_metadata")
        return value


class OrganizationUpdateSerializer(OrganizationSerializer):
    class Meta(OrganizationSerializer.Meta):
        read_only_fields = ["external_id", "status", "created_at", "updated_at"]
