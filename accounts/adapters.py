from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        """Nobody signs up on their own: staff are added by an owner and customer members are
        invited to their organization, so every account belongs to someone the tenant knows."""
        return False
