from rest_framework import serializers

from metering.models import Meter


class MeterSerializer(serializers.ModelSerializer):
    class Meta:
        model = Meter
        fields = [
            "code",
            "name",
            "event_type",
            "aggregation",
            "value_property",
            "filters",
            "group_by",
            "allow_negative",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        # The services validate meter rules (codes such as invalid_filters); the serializer checks shape.


class MeterUpdateSerializer(MeterSerializer):
    class Meta(MeterSerializer.Meta):
        read_only_fields = ["code", "created_at", "updated_at"]
