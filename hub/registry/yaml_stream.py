"""Row-by-row YAML reading of a register: a large file is never held as one node tree.

PyYAML's ``load`` first composes the whole document into nodes (with marks), then builds
Python objects: for a 20,000-home register that took ~45 s and ~850 MB here, most of it
garbage-collector work over the huge tree. Composing and constructing one table row at a
time from the (C) parser's event stream took ~14 s and ~190 MB on the same file, and keeps
each row's line number and node for error reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml
from yaml import events
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner


class _PyEvents(Reader, Scanner, Parser):
    """The pure-Python event source (used when libyaml is missing)."""

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)


def _row_loader(events_cls: Any) -> Any:
    # Safe construction only (never yaml.Loader's constructor, which builds Python objects).
    class RowLoader(events_cls, Composer, SafeConstructor, Resolver):  # type: ignore[misc]
        def __init__(self, text: str) -> None:
            events_cls.__init__(self, text)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    return RowLoader


_PY_LOADER = _row_loader(_PyEvents)
try:
    from yaml._yaml import CParser

    _LOADER = _row_loader(CParser)
except ImportError:
    _LOADER = _PY_LOADER


Item = tuple[int, yaml.Node, Any]  #: (line, node, value) of one row


class EmptyDocument(Exception):
    pass


class NotAMapping(Exception):
    pass


def top_level(text: str, *, pure_python: bool = False) -> Iterator[tuple[str, int, Iterator[Item] | Item]]:
    """Yield ``(key, line, rows)`` per top-level key: ``rows`` is an iterator of items for a
    sequence value (consume it before the next key), else the single item of the value."""
    loader = (_PY_LOADER if pure_python else _LOADER)(text)
    try:
        loader.get_event()  # StreamStart
        if loader.check_event(events.StreamEndEvent):
            raise EmptyDocument
        loader.get_event()  # DocumentStart
        if not loader.check_event(events.MappingStartEvent):
            raise NotAMapping
        loader.get_event()
        while not loader.check_event(events.MappingEndEvent):
            key_node = _compose(loader)
            key = str(loader.construct_object(key_node, deep=True))
            line = key_node.start_mark.line + 1
            if loader.check_event(events.SequenceStartEvent):
                start = loader.get_event()
                if start.tag not in (None, "!", "tag:yaml.org,2002:seq"):
                    raise yaml.YAMLError(f"line {line}: tag {start.tag} is not allowed on a table")
                yield key, line, _items(loader)
            else:
                yield key, line, _one(loader)
        loader.get_event()  # MappingEnd
        loader.get_event()  # DocumentEnd
        if not loader.check_event(events.StreamEndEvent):
            raise yaml.YAMLError("more than one YAML document in the file")
    finally:
        loader.dispose()


def _compose(loader: Any) -> yaml.Node:
    node: yaml.Node | None = loader.compose_node(None, None)
    if node is None:
        raise yaml.YAMLError("expected a YAML node")
    return node


def _one(loader: Any) -> Item:
    node = _compose(loader)
    value = loader.construct_object(node, deep=True)
    loader.constructed_objects.clear()
    return node.start_mark.line + 1, node, value


def _items(loader: Any) -> Iterator[Item]:
    while not loader.check_event(events.SequenceEndEvent):
        yield _one(loader)
    loader.get_event()
