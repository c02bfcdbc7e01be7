"""Frozen config dataclasses to and from plain data (JSON, TOML, command-line values).

>>> import dataclasses
>>> @dataclasses.dataclass(frozen=True)
... class Sizes:
...     channels: int = 512
...     widths: tuple[int, ...] = (1, 2)
>>> to_dict(Sizes())
{'channels': 512, 'widths': [1, 2]}
>>> from_dict(Sizes, {"channels": "256", "widths": [3]})
Sizes(channels=256, widths=(3,))
"""

import dataclasses
import json
import types
import typing
from typing import Any


def to_dict(config: Any) -> Any:
    """A config as nested plain data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _coerce(value: Any, annotation: Any) -> Any:
    """Convert plain data (from JSON, TOML or the command line) to ``annotation``'s type."""
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value)
    origin = typing.get_origin(annotation)
    if origin is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0]) for v in value)
        return tuple(_coerce(v, a) for v, a in zip(value, args, strict=True))
    if origin in (typing.Union, types.UnionType):
        return value
    if origin is typing.Literal:
        return value
    if annotation is float and isinstance(value, int | str):
        return float(value)
    if annotation is int and isinstance(value, str):
        return int(value)
    if annotation is bool and isinstance(value, str):
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"expected true or false, got {value!r}.")
        return value.lower() in ("true", "1")
    return value


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build dataclass ``cls`` from nested plain data, naming unknown keys."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} settings {sorted(unknown)}; known: {sorted(names)}."
        )
    return cls(**{k: _coerce(v, hints[k]) for k, v in data.items()})
