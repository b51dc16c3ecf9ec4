from accounts.models.api_key import APIKey, APIKeyScope
from accounts.models.user import StaffRole, User

__all__ = ["APIKey", "APIKeyScope", "StaffRole", "User"]
