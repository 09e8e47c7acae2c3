"""``safehome hub import`` / ``safehome hub export``: the register a district hands over."""

from __future__ import annotations

from pathlib import Path

import click

from hub.db.cli import db_url_option
from hub.db.errors import MigrationError
from hub.registry.errors import RegistryError, RegistryValidationError


@click.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@db_url_option
@click.option("--dry-run", is_flag=True, help="Validate and report what would change; write nothing.")
@click.option(
    "--prune",
    is_flag=True,
    help="Also delete rows the file no longer lists under the parents it does list (try --dry-run first).",
)
def import_cmd(paths: tuple[Path, ...], db_url: str, dry_run: bool, prune: bool) -> None:
    """Import a register: one YAML file, or CSV files (one per table) / a directory of them.

    Every row is validated first; on any error all errors are listed (table, row, line,
    column) and nothing is imported. Re-importing the same file changes nothing.
    """
    from hub.db.engine import make_engine, make_session_factory
    from hub.db.migrate import require_head
    from hub.registry.service import import_register

    engine = make_engine(db_url)
    try:
        require_head(engine)
        sessions = make_session_factory(engine)
        report = import_register(sessions, list(paths), dry_run=dry_run, prune=prune)
        if report.changed and not dry_run:  # the import commits per file set: recorded after it
            from hub import audit

            with sessions() as s, s.begin():
                audit.record(s, actor="cli", action="registry.import", target="registry", source="cli",
                             detail={"files": [str(p) for p in paths], "changed": report.changed, "prune": prune})
    except RegistryValidationError as exc:
        for err in exc.errors:
            click.echo(str(err), err=True)
        raise click.ClickException(str(exc)) from exc
    except (RegistryError, MigrationError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    for line in report.lines():
        click.echo(line)
    click.echo(("would change" if dry_run else "changed") + f" {report.changed} row(s)")


@click.command(name="export")
@db_url_option
@click.option("--district", default=None, help="District id (needed when the database holds several).")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Write here instead of stdout; a path without .yaml/.yml is a directory of CSV files.",
)
def export_cmd(db_url: str, district: str | None, output: Path | None) -> None:
    """Export the register in the import format (YAML, or CSV files with -o DIR)."""
    from hub.db.engine import make_engine, make_session_factory
    from hub.db.migrate import require_head
    from hub.registry.files import dump_yaml, write_csv
    from hub.registry.store import export

    engine = make_engine(db_url)
    try:
        require_head(engine)
        with make_session_factory(engine)() as session:
            data = export(session, district)
    except (LookupError, MigrationError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    if output is None:
        click.echo(dump_yaml(data), nl=False)
    elif output.suffix.lower() in (".yaml", ".yml"):
        output.write_text(dump_yaml(data), encoding="utf-8")
    else:
        for path in write_csv(data, output):
            click.echo(f"wrote {path}")
