"""Typed configuration: one settings model, loaded from TOML with environment overrides."""

from gateway.config.settings import (
    GatewaySettings,
    format_validation_error,
    load_settings,
    validate_settings,
)

__all__ = ["GatewaySettings", "format_validation_error", "load_settings", "validate_settings"]
