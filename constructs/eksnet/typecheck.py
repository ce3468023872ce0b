"""Typed props are enforced props: each construct and props class checks its arguments against its annotations.

Python does not check annotations, and jsii checks only what reaches JavaScript. Without this, a string where an
enum belongs (``pod_ipv4_egress="NAT64"``) is silently compared unequal to every member and yields a wrong
network, and ``nat_gateways="none"`` ends in a bare ``KeyError``. ``check_call`` (constructors) and
``check_fields`` (frozen dataclasses) raise ``TypeError`` naming the prop, what was given and what is accepted,
before anything is created.

Supported annotations: classes (enums list their members), ``X | None`` and unions, ``Sequence[X]``,
``Iterable[X]`` (not a string or a mapping; the elements of a list, tuple or set), ``tuple[X, ...]``,
``Mapping[K, V]``, ``dict[K, V]``, ``object``/``Any`` (anything), and jsii interfaces (``ec2.IVpc``: an
object with the interface's members). ``int`` refuses ``bool``; ``float`` takes ``int``.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import enum
import functools
import inspect
import types
import typing
from typing import Any


def check_call(owner: str, func: Any, arguments: dict[str, Any], skip: tuple[str, ...] = ("self", "scope"),
               error: type[TypeError] = TypeError) -> None:
    """Check ``arguments`` (a constructor's or builder's ``locals()``) against ``func``'s annotations.

    ``error``: the exception raised, ``TypeError`` or a subclass of it (the Multus builders raise one that is
    also their ``MultusConfigError``, so code that catches either keeps working).
    """
    hints = _hints(func)
    for name in inspect.signature(func).parameters:
        if name in skip or name not in hints or name not in arguments:
            continue
        check(owner, name, arguments[name], hints[name], error)


def check_fields(instance: Any, error: type[TypeError] = TypeError) -> None:
    """Check every field of a dataclass instance against its annotation."""
    cls = type(instance)
    hints = _hints(cls)
    for f in dataclasses.fields(instance):
        if f.name in hints:
            check(cls.__name__, f.name, getattr(instance, f.name), hints[f.name], error)


def check(owner: str, prop: str, value: Any, annotation: Any, error: type[TypeError] = TypeError) -> None:
    if not matches(value, annotation):
        raise error(f"{owner}.{prop} must be {describe(annotation)}, got {value!r} ({type(value).__name__})")


def matches(value: Any, annotation: Any) -> bool:
    """Whether ``value`` is of the annotated type (the element types of collections included)."""
    if annotation in (Any, object, inspect.Parameter.empty):
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if origin in (tuple,):
        if len(args) == 2 and args[1] is Ellipsis:  # a variable-length tuple: props coerce lists to tuples
            return isinstance(value, (list, tuple)) and all(matches(v, args[0]) for v in value)
        if not isinstance(value, tuple):
            return False
        return len(args) == len(value) and all(matches(v, a) for v, a in zip(value, args, strict=True))
    if origin in (cabc.Sequence, list, typing.Sequence):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            return False
        return not args or all(matches(v, args[0]) for v in value)
    if origin in (cabc.Iterable, typing.Iterable):
        # any iterable but a string or a mapping; the elements are checked where they can be without consuming them
        if isinstance(value, (str, bytes, cabc.Mapping)) or not isinstance(value, cabc.Iterable):
            return False
        if args and isinstance(value, (list, tuple, set, frozenset)):
            return all(matches(v, args[0]) for v in value)
        return True
    if origin in (cabc.Mapping, dict, typing.Mapping):
        if not isinstance(value, cabc.Mapping):
            return False
        return not args or all(matches(k, args[0]) and matches(v, args[1]) for k, v in value.items())
    if origin is not None:
        return isinstance(value, origin)
    if _is_protocol(annotation):
        # jsii returns objects it knows only by interface as a proxy over per-interface delegates
        candidates = [type(value), *(type(d) for d in getattr(value, "_delegates", ()) or ())]
        if value is not None and any(_declares(c, annotation) for c in candidates):
            return True  # a class that jsii says implements it (optional members may be absent from it)
        members = _protocol_members(annotation)
        return value is not None and all(any(hasattr(c, m) for c in candidates) for m in members)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True  # an annotation we cannot check (a forward reference or type variable): accept


def describe(annotation: Any) -> str:
    """What an annotation accepts, in words a user can act on."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is None or annotation is type(None):
        return "None"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin in (tuple, cabc.Sequence, list, typing.Sequence):
        return f"a list or tuple of {describe(args[0])}" if args else "a list or tuple"
    if origin in (cabc.Iterable, typing.Iterable):
        return f"a list or tuple of {describe(args[0])}" if args else "a list or tuple"
    if origin in (cabc.Mapping, dict, typing.Mapping):
        return f"a mapping of {describe(args[0])} to {describe(args[1])}" if args else "a mapping"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return f"{annotation.__name__} (one of {', '.join(m.name for m in annotation)})"
    if isinstance(annotation, type):
        return _qualified(annotation)
    return str(annotation)


def _qualified(cls: type) -> str:
    module = cls.__module__
    if module == "aws_cdk":
        return f"cdk.{cls.__name__}"
    for short, prefix in (("autoscaling", "aws_cdk.aws_autoscaling"), ("ec2", "aws_cdk.aws_ec2"), ("eks", "aws_cdk.aws_eks_v2"), ("kms", "aws_cdk.aws_kms"),
                          ("logs", "aws_cdk.aws_logs"), ("iam", "aws_cdk.aws_iam")):
        if module.startswith(prefix):
            return f"{short}.{cls.__name__}"
    return cls.__name__


@functools.cache
def _hints(obj: Any) -> dict[str, Any]:
    return typing.get_type_hints(obj)


def _is_protocol(annotation: Any) -> bool:
    return isinstance(annotation, type) and getattr(annotation, "_is_protocol", False)


@functools.cache
def _declares(cls: type, proto: type) -> bool:
    """Whether ``cls`` (or a base) is declared by jsii (``@jsii.implements``) to implement ``proto`` or a sub-interface."""
    for klass in cls.__mro__:
        for iface in getattr(klass, "__dict__", {}).get("__jsii_ifaces__", ()) or ():
            if proto in getattr(iface, "__mro__", ()):
                return True
    return False


@functools.cache
def _protocol_members(proto: type) -> tuple[str, ...]:
    names = set()
    for base in proto.__mro__:
        if base is object or not getattr(base, "_is_protocol", False):
            continue
        names |= {n for n in vars(base) if not n.startswith("_")}
    return tuple(sorted(names))
