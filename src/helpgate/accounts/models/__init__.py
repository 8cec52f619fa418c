"""The accounts documents (Beanie)."""

from helpgate.accounts.models.password_reset import PasswordResetToken
from helpgate.accounts.models.session import RefreshToken
from helpgate.accounts.models.skill import Skill
from helpgate.accounts.models.user import Role, User

__all__ = ["PasswordResetToken", "RefreshToken", "Role", "Skill", "User"]
