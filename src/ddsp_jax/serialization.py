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


def _type_name(annotation: Any) -> str:
    """How an expected type reads in an error message."""
    if dataclasses.is_dataclass(annotation):
        return "a table of settings"
    origin = typing.get_origin(annotation)
    if origin is tuple:
        return "a list"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(names) + (
            " or null" if type(None) in typing.get_args(annotation) else ""
        )
    return {float: "a number", int: "an integer", bool: "true or false", str: "a string"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert plain data (from JSON, TOML or the command line) to ``annotation``'s type.

    Raises:
        ValueError: Naming ``key``, the value and the expected type.
    """
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, key)  # type: ignore[arg-type]
    expected = ValueError(f"{key}: expected {_type_name(annotation)}, got {value!r}.")
    origin = typing.get_origin(annotation)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise expected
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ValueError(f"{key}: expected a list of {len(args)}, got {value!r}.")
        return tuple(
            _coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        for member in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, member, key)
            except ValueError:
                continue
        raise expected
    if origin is typing.Literal:
        if value not in typing.get_args(annotation):
            raise expected
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        raise expected
    if annotation in (int, float):
        if isinstance(value, bool):
            raise expected
        if isinstance(value, str):
            try:
                value = int(value) if annotation is int else float(value)
            except ValueError:
                raise expected from None
        if annotation is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int | float) or (annotation is int and isinstance(value, float)):
            raise expected
        return annotation(value)
    if annotation is str and not isinstance(value, str):
        raise expected
    return value


def from_dict(cls: type, data: dict[str, Any], key: str = "") -> Any:
    """Build dataclass ``cls`` from nested plain data.

    Raises:
        ValueError: For data that is not a table, unknown keys, values of the wrong type and
            values the dataclass refuses, each naming its key (``optimizer.learning_rate``).
    """
    where = f"{key}: " if key else ""
    if not isinstance(data, dict):
        raise ValueError(f"{where}expected a table of {cls.__name__} settings, got {data!r}.")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(
            f"{where}unknown {cls.__name__} settings {sorted(unknown)}; known: {sorted(names)}."
        )
    values = {k: _coerce(v, hints[k], f"{key}.{k}" if key else k) for k, v in data.items()}
    try:
        return cls(**values)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{where}{error}") from error
