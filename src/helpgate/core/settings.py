"""Settings read once from the environment (and a `.env` file), then passed down explicitly."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Every setting of helpgate; the README's table lists the same names."""

    model_config = SettingsConfigDict(
        env_prefix="HELPGATE_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
    )

    data_dir: Path = Path(".helpgate")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=2525, ge=0, le=65535)
    support_addresses: Annotated[list[str], NoDecode] = ["support@localhost"]
    max_message_bytes: int = Field(default=25 * MIB, gt=0)
    mongodb_uri: str | None = Field(default=None, validation_alias=AliasChoices("MONGODB_URI", "mongodb_uri"))
    mongodb_database: str = "helpgate"
    jwt_secret: str | None = Field(default=None, validation_alias=AliasChoices("JWT_SECRET", "jwt_secret"))
    secret_key: str | None = Field(
        default=None, validation_alias=AliasChoices("HELPGATE_SECRET_KEY", "secret_key")
    )  # encrypts stored IMAP passwords, signs Message-IDs and reply addresses
    jwt_issuer: str = "helpgate"
    jwt_audience: str = "helpgate-api"
    access_token_minutes: int = Field(default=15, gt=0)
    refresh_token_days: int = Field(default=14, gt=0)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)

    @field_validator("support_addresses", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            return [str(item).strip().lower() for item in value if str(item).strip()]
        return value

    @field_validator("support_addresses")
    @classmethod
    def _require_addresses(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one support address is needed")
        for address in value:
            if address.count("@") != 1:
                raise ValueError(f"not an email address: {address!r}")
        return value

    @property
    def embedded_store(self) -> bool:
        return not self.mongodb_uri
