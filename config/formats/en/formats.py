"""Django's English formats with the time zone named: the Django admin shows stored instants in
TIME_ZONE (UTC), and finance must not read them as local times ("Apr 1, 2027, 10:00 UTC")."""

DATETIME_FORMAT = "N j, Y, H:i T"
SHORT_DATETIME_FORMAT = "m/d/Y H:i T"
