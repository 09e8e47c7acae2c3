"""Errors of the registry import/export.

``RegistryError``
  ├── ``RegistryFileError``        the file cannot be read or parsed (YAML/CSV syntax, encoding)
  └── ``RegistryValidationError``  rows are invalid; carries every :class:`RowError` found
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RowError:
    """One problem: which table, which row (1-based within the table), which column."""

    table: str
    row: int | None
    column: str | None
    message: str
    line: int | None = None  #: line in the source file, when known
    row_id: str | None = None

    def __str__(self) -> str:
        where = self.table
        if self.row is not None:
            where += f" row {self.row}"
        extra = [f"line {self.line}"] if self.line is not None else []
        if self.row_id:
            extra.append(f"id {self.row_id}")
        if extra:
            where += f" ({', '.join(extra)})"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.message}"


class RegistryError(Exception):
    """Base of the registry errors."""


class RegistryFileError(RegistryError):
    pass


class RegistryValidationError(RegistryError):
    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} error(s) in the register; nothing was imported")
