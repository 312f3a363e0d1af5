"""YAML for task files: YAML 1.2 scalars, and bounds so that a hostile file gets one error naming its
line, never a blow-up.

PyYAML's `safe_load` builds nesting by recursion (10,000 `[` give a RecursionError thousands of lines
long) and shares aliased nodes, so a "billion laughs" file loads small and then explodes as soon as
it is walked (fingerprinting a task, writing a manifest). Here nesting is limited while the file is
composed, and the document's size with every alias expanded is counted, with memoisation, before
any Python object is built. A recursive alias (`&a [*a]`) is refused.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_DEPTH = 64
MAX_VALUES = 1_000_000  # scalars and collections, with aliases expanded


class YamlLimitError(ValueError):
    """The document breaks a bound; `line` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"{message} (line {line})")
        self.message = message
        self.line = line


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader with YAML 1.2 scalars and bounded nesting. YAML 1.1 reads `no` (Norwegian), `yes`,
    `on` as booleans, `1:30` (a time) as 90 and `010` as 8, which would silently change a language or
    an inline answer."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1
                raise YamlLimitError(f"nested deeper than {MAX_DEPTH} levels", line)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_YAML12 = {
    "tag:yaml.org,2002:bool": (r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    "tag:yaml.org,2002:int": (r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$", "-+0123456789"),
    "tag:yaml.org,2002:float": (
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
}
_BoundedLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _YAML12]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag, (_pattern, _first) in _YAML12.items():
    _BoundedLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def load_yaml(text: str) -> Any:
    """Parse one YAML document within the bounds; raises `YamlLimitError` or `yaml.YAMLError`."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, {}, set(), 0)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(node: Node, sizes: dict[int, int], open_nodes: set[int], depth: int) -> int:
    """How many values `node` stands for once every alias is expanded (memoised per node)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    line = node.start_mark.line + 1
    if key in open_nodes:
        raise YamlLimitError("an alias refers to a collection that contains it", line)
    if depth > MAX_DEPTH:
        raise YamlLimitError(f"nested deeper than {MAX_DEPTH} levels once aliases are expanded", line)
    size = 1
    if isinstance(node, (SequenceNode, MappingNode)):
        open_nodes.add(key)
        children = node.value if isinstance(node, SequenceNode) else [n for pair in node.value for n in pair]
        for child in children:
            size += _expanded_size(child, sizes, open_nodes, depth + 1)
            if size > MAX_VALUES:
                raise YamlLimitError(
                    f"expands to more than {MAX_VALUES:,} values through aliases (an alias bomb?)", line
                )
        open_nodes.discard(key)
    sizes[key] = size
    return size
