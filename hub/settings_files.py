"""Build a pydantic-settings object from a TOML file, the environment and explicit overrides.

Precedence, lowest first: field defaults < TOML file < ``SAFEHOME_<PART>_*`` env <
explicit keyword overrides (command-line options). One settings object per process,
built in ``main()`` and passed down.
"""

from __future__ import annotations

import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

S = TypeVar("S", bound=BaseSettings)

_FILE_DATA: ContextVar[dict[str, Any] | None] = ContextVar("_FILE_DATA", default=None)


class SettingsError(ValueError):
    """Settings that cannot be loaded, or that the process must refuse to run with."""


class FileSource(PydanticBaseSettingsSource):
    """The TOML data of the settings file being loaded (lowest-priority source)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_FILE_DATA.get() or {})


class FileSettings(BaseSettings):
    """Base class: adds the TOML file source below env and init values."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, FileSource(settings_cls))


def read_toml(path: Path, table: str | None = None) -> dict[str, Any]:
    """The TOML file's table ``table`` if present, else the whole document."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise SettingsError(f"cannot read settings file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"settings file {path} is not valid TOML: {exc}") from exc
    if table and isinstance(data.get(table), dict):
        return dict(data[table])
    return data


def load_settings(cls: type[S], path: Path | None = None, table: str | None = None, **overrides: Any) -> S:
    """Load ``cls`` from ``path`` (optional) + env + non-None ``overrides``."""
    data = read_toml(path, table) if path is not None else {}
    token = _FILE_DATA.set(data)
    try:
        return cls(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        where = f" (file {path})" if path else ""
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise SettingsError(f"invalid settings{where}: {problems}") from exc
    finally:
        _FILE_DATA.reset(token)
