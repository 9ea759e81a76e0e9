"""GraphQL object types derived from result models, bound by a field list.

The impact engine (:mod:`impact.results`, :mod:`impact.licences`), the model
(:mod:`cmdb_graph.model`) and the service layer already declare each result once, as a frozen
pydantic model or dataclass. The API does not declare a mirror class and a converter for
each: :func:`derived` binds a strawberry type to the model by a *field list* (GraphQL order,
description, and which strings are GraphQL IDs), takes each field's type from the model, and
lets a resolver return
the model instance itself (strawberry reads each field with ``getattr``). Fields that the
model does not have (resolvers, or extra values of an API page) are declared in the class
body as usual and come after the listed ones; :func:`of` builds such an answer from a model
instance and the extra values.

Type mapping, from the model field's annotation:

* ``str`` -> ``String``, or ``ID`` for fields listed with :func:`ids`;
* ``int``, ``bool``, ``float``, ``date``, ``datetime`` -> themselves;
* an enum registered with ``strawberry.enum`` -> that enum;
* a pydantic model with a derived type -> that type;
* ``tuple[X, ...]``, a :class:`impact.lazy.LazyItems` of X, ``list[X]`` -> ``[X!]!``;
* ``dict[str, int]`` -> ``[CountEntry!]!`` sorted by key;
* ``X | None`` -> nullable ``X`` (an empty optional ID is null).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import strawberry
from pydantic import BaseModel
from strawberry.types.base import get_object_definition

from impact.lazy import LazyItems

__all__ = ["CountEntry", "Extended", "Field", "answer", "answers", "derived", "ids", "of"]

C = TypeVar("C")

#: model class -> the strawberry type derived from it (nested models resolve through it)
_DERIVED: dict[type, type] = {}


@strawberry.type(description="A count per key (status, CI class, ...).")
class CountEntry:
    key: str = strawberry.field(description="What is counted.")
    count: int = strawberry.field(description="How many.")


@dataclasses.dataclass(frozen=True)
class Field:
    """How one model field appears in GraphQL.

    Parameters
    ----------
    description : str
        The field's description (schema documentation).
    id : bool
        Its strings are GraphQL ``ID`` values.
    name : str, optional
        GraphQL name, when not the camelCase of the model field's name.
    resolver : callable, optional
        Computes the field from the model instance (its ``root`` parameter) when the API
        gives it another shape; the field's type is the resolver's return type.
    """

    description: str
    id: bool = False
    name: str | None = None
    resolver: Callable[..., Any] | None = None


def ids(description: str, *, name: str | None = None) -> Field:
    """A field whose strings (alone, in lists or nullable) are GraphQL ``ID`` values."""
    return Field(description, id=True, name=name)


def derived(
    model: type,
    *,
    fields: Mapping[str, str | Field],
    description: str,
    name: str | None = None,
) -> Callable[[type[C]], type[C]]:
    """Make the decorated class a strawberry type bound to ``model`` by a field list.

    Parameters
    ----------
    model : type
        The result model (a pydantic model or a dataclass); its instances can be returned
        wherever the type is expected.
    fields : mapping of str to str or Field
        Model fields (or properties) exposed, in GraphQL order: a description, or a
        :class:`Field`. Fields declared in the class body follow them.
    description : str
        The type's description.
    name : str, optional
        GraphQL name (default: the class name).

    Returns
    -------
    callable
        The class decorator.

    Raises
    ------
    TypeError
        A listed field is not on the model, or its type has no GraphQL mapping.
    """

    def wrap(cls: type[C]) -> type[C]:
        annotations, namespace = _listed(model, cls.__name__, fields)
        own = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
        own_annotations = own.pop("__annotations__", {})
        clash = (set(own_annotations) | set(own)) & set(annotations)
        if clash:
            raise TypeError(f"{cls.__name__}: {sorted(clash)} both listed and declared")
        namespace.update(own)
        namespace["__annotations__"] = {**annotations, **own_annotations}

        def is_type_of(obj: object, _info: object) -> bool:
            if isinstance(obj, Extended):
                obj = obj.model
            return isinstance(obj, (new, model))

        namespace["is_type_of"] = staticmethod(is_type_of)
        new = types.new_class(cls.__name__, cls.__bases__,
                              exec_body=lambda ns: ns.update(namespace))
        new.__qualname__ = cls.__qualname__
        done = strawberry.type(new, name=name, description=description)
        _DERIVED[model] = done
        return typing.cast("type[C]", done)

    return wrap


def _listed(
    model: type, cls_name: str, fields: Mapping[str, str | Field]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The annotations and strawberry fields of the listed model fields, in list order."""
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {}
    for field_name, spec in fields.items():
        f = spec if isinstance(spec, Field) else Field(spec)
        if f.resolver is not None:
            _require_field(model, field_name)
            py_type = typing.get_type_hints(f.resolver).get("return")
            if py_type is None:
                raise TypeError(f"{cls_name}.{field_name}: the resolver needs a return "
                                "annotation")
        else:
            py_type = _graphql_type(_model_annotation(model, field_name), f.id)
        annotations[field_name] = py_type
        namespace[field_name] = _field(field_name, py_type, f)
    return annotations, namespace


class Extended:
    """A model instance with the values of the fields its API type adds (see :func:`of`):
    attributes are read from ``extra`` first, then from the model."""

    __slots__ = ("_extra", "model")

    def __init__(self, model: object, extra: dict[str, Any]) -> None:
        self.model = model
        self._extra = extra

    def __getattr__(self, name: str) -> Any:
        extra = object.__getattribute__(self, "_extra")
        if name in extra:
            return extra[name]
        return getattr(object.__getattribute__(self, "model"), name)


def of(cls: type[C], instance: object, **extra: Any) -> C:
    """An answer of the derived type ``cls``: the model ``instance`` with the values of the
    fields declared in the class body (``extra``; listed fields may be overridden too)."""
    definition = get_object_definition(cls, strict=True)
    declared = {f.python_name for f in definition.fields}
    unknown = set(extra) - declared
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {sorted(unknown)}")
    return typing.cast(C, Extended(instance, extra))


def answer(cls: type[C], instance: object) -> C:
    """``instance``, a model instance of the type ``cls`` is derived from, as a value of
    ``cls`` (for type checkers only: strawberry reads the instance as it is)."""
    return typing.cast(C, instance)


def answers(cls: type[C], instances: Iterable[object]) -> list[C]:
    """:func:`answer` for each of ``instances``, as a list."""
    return typing.cast(list[C], list(instances))


# -- type mapping ---------------------------------------------------------------------------


def _require_field(model: type, name: str) -> None:
    fields: Mapping[str, object] = (model.model_fields if issubclass(model, BaseModel)
                                    else getattr(model, "__dataclass_fields__", {}))
    if name not in fields and not isinstance(getattr(model, name, None), property):
        raise TypeError(f"{model.__name__} has no field {name!r}")


def _model_annotation(model: type, name: str) -> Any:
    _require_field(model, name)
    if issubclass(model, BaseModel) and name in model.model_fields:
        return model.model_fields[name].annotation
    prop = getattr(model, name, None)
    if isinstance(prop, property) and prop.fget is not None:
        return typing.get_type_hints(prop.fget)["return"]
    return typing.get_type_hints(model)[name]


_SCALARS: tuple[type, ...] = (str, int, bool, float, date, datetime)


def _graphql_type(annotation: Any, as_id: bool) -> Any:
    origin = get_origin(annotation)
    if origin is Annotated:  # validators and metadata do not change the GraphQL type
        return _graphql_type(get_args(annotation)[0], as_id)
    if origin in (Union, types.UnionType):
        present = [a for a in get_args(annotation) if a is not type(None)]
        if len(present) != 1:
            raise TypeError(f"no GraphQL mapping for {annotation!r}")
        return _graphql_type(present[0], as_id) | None
    if origin in (tuple, list):
        args = get_args(annotation)
        if origin is tuple and (len(args) != 2 or args[1] is not Ellipsis):
            raise TypeError(f"no GraphQL mapping for {annotation!r}")
        return list[_graphql_type(args[0], as_id)]
    if origin is dict and get_args(annotation) == (str, int):
        return list[CountEntry]
    if isinstance(annotation, type):
        if issubclass(annotation, LazyItems):
            return list[_graphql_type(annotation.item_type, as_id)]
        if annotation in _DERIVED:
            return _DERIVED[annotation]
        if hasattr(annotation, "__strawberry_definition__"):
            return annotation
        if annotation is str and as_id:
            return strawberry.ID
        if annotation in _SCALARS:
            return annotation
    raise TypeError(f"no GraphQL mapping for {annotation!r}")


def _field(field_name: str, py_type: Any, f: Field) -> Any:
    if f.resolver is not None:
        return strawberry.field(description=f.description, name=f.name, resolver=f.resolver)
    if py_type == list[CountEntry]:
        return strawberry.field(description=f.description, name=f.name,
                                resolver=_counts_of(field_name))
    if py_type == strawberry.ID | None:
        return strawberry.field(description=f.description, name=f.name,
                                resolver=_id_or_none(field_name))
    return strawberry.field(description=f.description, name=f.name)


def _id_or_none(attr: str) -> Callable[..., strawberry.ID | None]:
    """A resolver giving the optional id ``attr``, an empty one as null."""

    def resolve(root: Any) -> strawberry.ID | None:
        value: str | None = getattr(root, attr)
        return strawberry.ID(value) if value else None

    return resolve


def _counts_of(attr: str) -> Callable[..., list[CountEntry]]:
    """A resolver listing the ``dict[str, int]`` attribute ``attr`` as counts, by key."""

    def resolve(root: Any) -> list[CountEntry]:
        counts: dict[str, int] = getattr(root, attr)
        return [CountEntry(key=k, count=v) for k, v in sorted(counts.items())]

    return resolve
