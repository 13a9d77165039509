"""Options dataclasses: one frozen dataclass per entry point (``CaptureOptions``,
``CompareOptions``, ``ProbeOptions``, ``FinetuneOptions``). Keyword overrides, the study
file's sections and the CLI's flags are all made from their fields here, so none of them
restates an option by hand.

A field may carry ``metadata={"choices": (...), "help": "..."}`` (``option(...)``): the
CLI shows both, the study names the choices in its errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def option(default, *, choices: tuple | None = None, help: str = "") -> Any:  # noqa: A002
    """A dataclass field with its default, its closed set of choices and a one-line help."""
    metadata = {"help": help}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if isinstance(default, (list, dict, set)):
        raise TypeError("an option's default must be immutable (a tuple, not a list)")
    return dataclasses.field(default=default, metadata=metadata)


def names(cls) -> list[str]:
    """The option names of an options dataclass, in declaration order."""
    return [f.name for f in dataclasses.fields(cls)]


def check_known(cls, given, what: str = "") -> None:
    """A TypeError for the first name in ``given`` that is not a field of ``cls``, with the
    closest field and the list of them (``what``: whose options, when several classes share)."""
    unknown = sorted(set(given) - set(names(cls)))
    if unknown:
        close = difflib.get_close_matches(unknown[0], names(cls), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise TypeError(f"unknown option {unknown[0]!r}{hint}: {what or cls.__name__} takes "
                        f"{', '.join(names(cls))}")


def with_overrides(cls: type[T], options: T | None = None, **overrides) -> T:
    """``options`` (default: ``cls()``) with keyword overrides of its fields, validated once
    (by ``cls``); an unknown keyword is a TypeError listing the options."""
    check_known(cls, overrides)
    if options is not None and not isinstance(options, cls):
        raise TypeError(f"options must be a {cls.__name__}, got {type(options).__name__}")
    return dataclasses.replace(options or cls(), **overrides)


def split_overrides(overrides: dict, *classes) -> list[dict]:
    """Keyword overrides shared out among several options dataclasses by field name; a
    keyword none of them takes is a TypeError listing them all."""
    out = [{k: v for k, v in overrides.items() if k in names(cls)} for cls in classes]
    taken = set().union(*out) if out else set()
    unknown = sorted(set(overrides) - taken)
    if unknown:
        close = difflib.get_close_matches(unknown[0], [n for cls in classes for n in names(cls)], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        listed = "; ".join(f"{cls.__name__}: {', '.join(names(cls))}" for cls in classes)
        raise TypeError(f"unknown option {unknown[0]!r}{hint}: the options are {listed}")
    return out


def from_mapping(cls: type[T], mapping: dict, defaults: dict | None = None) -> T:
    """An options dataclass from a mapping as YAML or JSON reads it (lists become tuples
    where the field is a tuple); ``defaults`` replace the dataclass's own where the mapping
    is silent. Errors are the dataclass's own (TypeError, ValueError)."""
    check_known(cls, mapping)
    hints = typing.get_type_hints(cls)
    values = {**(defaults or {}), **mapping}
    for name, value in values.items():
        if isinstance(value, list) and _is_tuple(hints[name]):
            values[name] = tuple(value)
    return cls(**values)


def to_mapping(options) -> dict:
    """The options as a plain mapping (tuples as lists), as a study or results file holds them."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(options).items()}


def _is_tuple(hint) -> bool:
    return any(typing.get_origin(t) is tuple or t is tuple for t in (hint, *typing.get_args(hint)))


def _scalar(hint):
    """The scalar type of a field: X for ``X | None`` and ``tuple[X, ...]``."""
    args = [t for t in typing.get_args(hint) if t is not type(None) and t is not Ellipsis]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return _scalar(args[0])
    if typing.get_origin(hint) is tuple:
        return args[0] if args else str
    return hint if isinstance(hint, type) else str


def add_arguments(parser: argparse.ArgumentParser, cls, title: str, skip: tuple[str, ...] = (),
                  prefix: str = "") -> None:
    """One ``--flag`` per field of ``cls`` (``--no-flag`` for booleans, several values for
    tuples), each defaulting to unset so that only the flags given override; ``prefix``
    names them ``--<prefix>-<field>`` (for a second options class beside another)."""
    group = parser.add_argument_group(title)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        dest = f"{prefix}_{f.name}" if prefix else f.name
        flag = "--" + dest.replace("_", "-")
        choices = f.metadata.get("choices")
        shown = f.default if not isinstance(f.default, tuple) else " ".join(map(str, f.default))
        text = " ".join(filter(None, [f.metadata.get("help", ""),
                                      None if f.default is None else f"(default: {shown})"]))
        if hints[f.name] is bool:
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None,
                               help=text)
            continue
        kind = _scalar(hints[f.name])
        kind = kind if kind in (int, float, str) else str
        extra = {"nargs": "+"} if _is_tuple(hints[f.name]) else {}
        if choices:
            extra["choices"] = [c for c in choices if c is not None]
        group.add_argument(flag, dest=dest, type=kind, default=None,
                           metavar=None if choices else kind.__name__.upper(), help=text, **extra)


def from_arguments(cls: type[T], args: argparse.Namespace, prefix: str = "") -> dict:
    """The fields of ``cls`` given on the command line (unset flags left out; ``prefix`` as
    ``add_arguments``'s); one value of a field that takes a number or several (``l2``) is
    the number."""
    hints = typing.get_type_hints(cls)
    out = {}
    for name in names(cls):
        value = getattr(args, f"{prefix}_{name}" if prefix else name, None)
        if isinstance(value, list):
            scalar = len(value) == 1 and _scalar(hints[name]) in typing.get_args(hints[name])
            value = value[0] if scalar else tuple(value)
        if value is not None:
            out[name] = value
    return out
