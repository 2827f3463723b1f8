"""Reading YAML settings files: params.yaml's loader (duplicated keys refused, YAML 1.2 floats),
override files, the one error type of the configuration and its message format (the key named).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hypermask.typed import MAX_SEED, NAME_PATTERN, Name, NonNegative, Positive, Seed  # noqa: F401 (the package's field types)


class ConfigError(ValueError):
    """A problem with params.yaml or with what it points to; the message names the key or path."""


def format_errors(err: ValidationError, prefix: str) -> str:
    lines = []
    for e in err.errors():
        if e["loc"] and e["loc"][-1] == "[key]" and e["type"] == "string_pattern_mismatch":  # a name
            where = ".".join(str(p) for p in e["loc"][:-2])
            lines.append(
                f"{prefix}.{where}: name {e['loc'][-2]!r} is not allowed: use letters, digits and _ "
                "(it names folders under results/ and pipeline jobs)"
            )
            continue
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-after"))
        msg = e["msg"].removeprefix("Value error, ")
        # model validators put the offending key first in their message: "key: why"
        if ": " in msg and e["type"] == "value_error":
            key, why = msg.split(": ", 1)
            loc = f"{loc}.{key}" if loc else key
            msg = why
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{prefix}{'.' + loc if loc else ''}: {msg}")
    return "\n".join(lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key written twice in one mapping (PyYAML keeps the last),
    and reads `1e-3` as the float it is in YAML 1.2 and JSON (PyYAML's YAML 1.1 rules need
    `1.0e-3` and would hand the strict schema a string)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicated key {key!r} (first at line {seen[key].line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


# YAML 1.2's float (and PyYAML's own forms): 1e-3, -2.5E+4, .5, 1., .inf, .nan
_UniqueKeyLoader.yaml_implicit_resolvers = {
    k: [r for r in v if r[0] != "tag:yaml.org,2002:float"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(path: str | Path) -> Any:
    """A YAML file as Python data; unreadable files, bad YAML and duplicated keys raise
    ConfigError naming the file (and the line)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError as e:  # a binary file or another encoding (a ValueError, not an OSError)
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    return parse_yaml(text, path)


def parse_yaml(text: str, path: str | Path) -> Any:
    """YAML text (read from `path`) as Python data, as load_yaml."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None


def read_overrides(path: str | Path) -> dict[str, Any]:
    """A YAML mapping of dotted experiment keys to values (e.g. a sweep's best_params.yaml)."""
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ConfigError(f"{path}: overrides must be a mapping of dotted keys to values")
    return data
