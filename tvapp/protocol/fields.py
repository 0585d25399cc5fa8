"""Field rules, records and the one envelope codec that every tvapp wire protocol is written with.

A message is a frozen dataclass whose fields each carry one rule in their annotation
(``volume: Annotated[float, Range(0.0, 1.0)]``). The rule is used three ways: to read the field from JSON, to write
it to JSON, and to check a value built in Python, so that what one side sends the other side accepts. ``Record`` is
the base of value types and of messages; ``Message`` adds the ``TYPE`` a message travels under.

Mistakes get codes a peer can act on. A missing field or a wrong JSON type is always ``bad_message``; a value of the
right type outside its range or set is ``bad_message`` for the plain rules (Text, Choice, Number, Integer) and
``invalid_value`` for Range, OneOf and Matching, the rules the remote-control protocol uses to tell the two apart.
Error messages name the field (``set_volume.volume: must be between 0 and 1``) and never repeat the value, which
may be a secret.

``Envelope`` is the codec: text in, with a byte limit, parsed as JSON, ``"v"`` and ``"type"`` checked, the message
class looked up in a registry; out, compact JSON with ``"type"`` and ``"v"`` in front. Unknown extra fields are
ignored so that newer peers can add fields. The pairing bodies travel without an envelope (the HTTP route says what
they are): they use ``Envelope.load`` and the records alone.
"""

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final, Self, TypeVar, get_args

from tvapp.core.errors import CodedError
from tvapp.core.text import text_problem

BAD_MESSAGE: Final = "bad_message"
INVALID_NAME: Final = "invalid_name"
INVALID_VALUE: Final = "invalid_value"
UNSUPPORTED_VERSION: Final = "unsupported_version"


class ProtocolError(CodedError, ValueError):
    """A message that breaks a protocol: ``code`` is what the peer is told, ``message`` says which field, ``id`` is
    the id of the request it answers when that could be read (remote-control commands carry one)."""

    def __init__(self, code: str, message: str, id: str | None = None) -> None:
        super().__init__(code, message)
        self.id = id

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class UnknownMessageType(ProtocolError):
    """A well-formed message of a type this side does not know (a newer peer may send these)."""


def bad(path: str, problem: str) -> ProtocolError:
    """Return the bad_message error for the field at ``path``."""
    return ProtocolError(BAD_MESSAGE, f"{path}: {problem}")


def invalid(path: str, problem: str) -> ProtocolError:
    """Return the invalid_value error for the field at ``path``."""
    return ProtocolError(INVALID_VALUE, f"{path}: {problem}")


# --- field rules -----------------------------------------------------------------------------------------------


class FieldRule:
    """How one field is read from JSON, checked in Python and written to JSON."""

    def decode(self, value: object, path: str) -> object:
        """Return the Python value for a JSON value, or raise ProtocolError."""
        raise NotImplementedError

    def check(self, value: object, path: str) -> None:
        """Raise ProtocolError unless a Python value obeys the rule."""
        self.decode(value, path)

    def encode(self, value: Any) -> object:
        """Return the JSON value for a Python value."""
        return value


def _or_null(nullable: bool) -> str:
    return " or null" if nullable else ""


@dataclasses.dataclass(frozen=True)
class Text(FieldRule):
    """A string of at most ``max_len`` characters (or UTF-8 bytes), optionally non-empty, printable or null.

    ``human`` applies tvapp.core.text's rule for names people read (refused with ``invalid_name``).
    """

    max_len: int
    in_bytes: bool = False
    nonempty: bool = False
    nullable: bool = False
    printable: bool = False
    too_long_code: str = BAD_MESSAGE
    human: bool = False

    def decode(self, value: object, path: str) -> object:
        """Return the string; raise ProtocolError when it breaks the rule."""
        if value is None and self.nullable:
            return None
        if not isinstance(value, str):
            raise bad(path, "expected a string" + _or_null(self.nullable))
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError:
            raise bad(path, "is not valid Unicode (a lone surrogate)") from None
        size = len(encoded) if self.in_bytes else len(value)
        if size > self.max_len:
            unit = "bytes" if self.in_bytes else "characters"
            raise ProtocolError(self.too_long_code, f"{path}: longer than {self.max_len} {unit}")
        if self.nonempty and not value:
            raise bad(path, "must not be empty")
        if self.printable and not value.isprintable():
            raise bad(path, "must be printable (no line breaks or control characters)")
        if self.human:
            problem = text_problem(value, self.max_len)
            if problem is not None:
                raise ProtocolError(INVALID_NAME, f"{path}: {problem}")
        return value


@dataclasses.dataclass(frozen=True)
class Choice(FieldRule):
    """One of a few strings (or null where ``nullable``); anything else is bad_message."""

    values: tuple[str, ...]
    nullable: bool = False

    def decode(self, value: object, path: str) -> object:
        """Return the string; raise ProtocolError unless it is one of the values."""
        if value is None and self.nullable:
            return None
        if not isinstance(value, str) or value not in self.values:
            raise bad(path, "must be one of " + ", ".join(self.values) + _or_null(self.nullable))
        return value


@dataclasses.dataclass(frozen=True)
class OneOf(FieldRule):
    """One of a few strings; another string is invalid_value, another JSON type bad_message."""

    values: tuple[str, ...]

    def decode(self, value: object, path: str) -> object:
        """Return the string; raise ProtocolError unless it is one of the values."""
        if not isinstance(value, str):
            raise bad(path, "expected a string")
        if value not in self.values:
            raise invalid(path, "must be one of " + ", ".join(self.values))
        return value


@dataclasses.dataclass(frozen=True)
class Bool(FieldRule):
    """true or false (or null when ``nullable``), nothing that merely looks like one."""

    nullable: bool = False

    def decode(self, value: object, path: str) -> object:
        """Return the boolean; raise ProtocolError for anything else."""
        if value is None and self.nullable:
            return None
        if not isinstance(value, bool):
            raise bad(path, "expected true or false" + _or_null(self.nullable))
        return value


def _number(value: object, path: str, nullable: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(path, "expected a number" + _or_null(nullable))
    return float(value)


@dataclasses.dataclass(frozen=True)
class Number(FieldRule):
    """A finite number (read as a float), optionally greater than 0 or null; anything else is bad_message."""

    positive: bool = False
    nullable: bool = False

    def decode(self, value: object, path: str) -> object:
        """Return the float; raise ProtocolError when it breaks the rule."""
        if value is None and self.nullable:
            return None
        try:
            number = _number(value, path, self.nullable)
        except OverflowError:
            raise bad(path, "out of range") from None
        if not math.isfinite(number):
            raise bad(path, "must be finite")
        if self.positive and number <= 0:
            raise bad(path, "must be greater than 0")
        return number


@dataclasses.dataclass(frozen=True)
class Range(FieldRule):
    """A finite number from ``low`` to ``high`` (invalid_value outside); ``problem`` is what such a value is told."""

    low: float
    high: float = math.inf
    nullable: bool = False
    problem: str = ""

    def decode(self, value: object, path: str) -> object:
        """Return the float; raise ProtocolError when it breaks the rule."""
        if value is None and self.nullable:
            return None
        problem = self.problem or f"must be between {self.low:g} and {self.high:g}"
        try:
            number = _number(value, path, self.nullable)
        except OverflowError:
            raise invalid(path, problem) from None
        if not (math.isfinite(number) and self.low <= number <= self.high):
            raise invalid(path, problem)
        return number


@dataclasses.dataclass(frozen=True)
class Integer(FieldRule):
    """An integer from ``low`` to ``high``, optionally null; anything else is bad_message."""

    low: int
    high: int
    nullable: bool = False

    def decode(self, value: object, path: str) -> object:
        """Return the integer; raise ProtocolError when it breaks the rule."""
        if value is None and self.nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(path, "expected an integer" + _or_null(self.nullable))
        if not self.low <= value <= self.high:
            raise bad(path, f"must be between {self.low} and {self.high}")
        return value


@dataclasses.dataclass(frozen=True)
class Matching(FieldRule):
    """A string that ``accepts`` takes (a pattern's fullmatch, a code normalizer); else invalid_value, naming
    ``what`` it must be."""

    accepts: Callable[[str], object]
    what: str
    nullable: bool = False

    def decode(self, value: object, path: str) -> object:
        """Return the string; raise ProtocolError unless it is accepted."""
        if value is None and self.nullable:
            return None
        if not isinstance(value, str):
            raise bad(path, "expected a string" + _or_null(self.nullable))
        if not self.accepts(value):
            raise invalid(path, f"is not {self.what}")
        return value


@dataclasses.dataclass(frozen=True)
class Object(FieldRule):
    """A nested record, optionally null."""

    cls: "type[Record]"
    nullable: bool = False

    def decode(self, value: object, path: str) -> object:
        """Return the record read from a JSON object."""
        if value is None and self.nullable:
            return None
        return self.cls.decode_at(value, path)

    def check(self, value: object, path: str) -> None:
        """Raise ProtocolError unless ``value`` is such a record."""
        if value is None and self.nullable:
            return
        if not isinstance(value, self.cls):
            raise bad(path, f"expected a {self.cls.__name__}" + (" or None" if self.nullable else ""))

    def encode(self, value: Any) -> object:
        """Return the record's JSON object."""
        return None if value is None else value.to_json()


@dataclasses.dataclass(frozen=True)
class Array(FieldRule):
    """A list of records (a tuple in Python)."""

    cls: "type[Record]"

    def decode(self, value: object, path: str) -> object:
        """Return the records read from a JSON array."""
        if not isinstance(value, list):
            raise bad(path, "expected an array")
        return tuple(self.cls.decode_at(item, f"{path}[{i}]") for i, item in enumerate(value))

    def check(self, value: object, path: str) -> None:
        """Raise ProtocolError unless ``value`` is a tuple of such records."""
        if not isinstance(value, tuple):
            raise bad(path, "expected a tuple")
        for i, item in enumerate(value):
            if not isinstance(item, self.cls):
                raise bad(f"{path}[{i}]", f"expected a {self.cls.__name__}")

    def encode(self, value: Any) -> object:
        """Return the JSON array of the records."""
        return [item.to_json() for item in value]


@dataclasses.dataclass(frozen=True)
class TextArray(FieldRule):
    """A list of at most ``max_items`` strings that each obey ``item`` (a tuple in Python)."""

    item: Text
    max_items: int

    def decode(self, value: object, path: str) -> object:
        """Return the strings read from a JSON array."""
        if not isinstance(value, list):
            raise bad(path, "expected an array")
        self._check_items(value, path)
        return tuple(value)

    def check(self, value: object, path: str) -> None:
        """Raise ProtocolError unless ``value`` is a tuple of such strings."""
        if not isinstance(value, tuple):
            raise bad(path, "expected a tuple")
        self._check_items(value, path)

    def _check_items(self, items: "list[object] | tuple[object, ...]", path: str) -> None:
        if len(items) > self.max_items:
            raise bad(path, f"more than {self.max_items} items")
        for i, item in enumerate(items):
            self.item.decode(item, f"{path}[{i}]")

    def encode(self, value: Any) -> object:
        """Return the JSON array of the strings."""
        return list(value)


# --- records and messages --------------------------------------------------------------------------------------


_FIELDS: dict[type, tuple[tuple[str, FieldRule, bool], ...]] = {}


def fields_of(cls: type) -> tuple[tuple[str, FieldRule, bool], ...]:
    """Return (name, rule, required) for each field of a record class."""
    cached = _FIELDS.get(cls)
    if cached is not None:
        return cached
    found = []
    for field in dataclasses.fields(cls):
        rules = [meta for meta in get_args(field.type)[1:] if isinstance(meta, FieldRule)]
        if len(rules) != 1:
            raise TypeError(f"{cls.__name__}.{field.name} needs exactly one rule in its annotation")
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        found.append((field.name, rules[0], required))
    _FIELDS[cls] = tuple(found)
    return _FIELDS[cls]


class Record:
    """Base of every value type and message: JSON reading and writing driven by the field annotations."""

    def __post_init__(self) -> None:
        for name, rule, _ in fields_of(type(self)):
            rule.check(getattr(self, name), f"{type(self).__name__}.{name}")

    def to_json(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict (messages get "type" and "v" from their Envelope)."""
        return {name: rule.encode(getattr(self, name)) for name, rule, _ in fields_of(type(self))}

    @classmethod
    def from_json(cls, obj: object) -> Self:
        """Build from a decoded JSON object, ignoring unknown fields; raise ProtocolError naming a bad field."""
        return cls.decode_at(obj, getattr(cls, "TYPE", cls.__name__))

    @classmethod
    def decode_at(cls, obj: object, path: str) -> Self:
        """Build from a decoded JSON object found at ``path`` (used in error messages)."""
        if not isinstance(obj, dict):
            raise bad(path, "expected a JSON object")
        values: dict[str, object] = {}
        for name, rule, required in fields_of(cls):
            if name in obj:
                values[name] = rule.decode(obj[name], f"{path}.{name}")
            elif required:
                raise bad(f"{path}.{name}", "required")
        build: Callable[..., Self] = cls
        return build(**values)


class Message(Record):
    """A record that travels on its own, in an envelope under its ``TYPE``."""

    TYPE: ClassVar[str]


R = TypeVar("R", bound=Record)
M = TypeVar("M", bound=Message)


def registry(*classes: type[M]) -> Mapping[str, type[M]]:
    """Return the message classes by their TYPE (what an Envelope looks a received "type" up in)."""
    return {cls.TYPE: cls for cls in classes}


# --- the envelope ----------------------------------------------------------------------------------------------


def _refuse_constant(name: str) -> object:
    raise bad("message", f"{name} is not allowed in JSON")


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Return a JSON object's members as a dict; raise bad_message when a key appears twice (parsers disagree on it)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise bad("message", f"the key {key[:64]!r} appears twice in one object")
            seen.add(key)
    return obj


def strict_json(text: str | bytes) -> object:
    """Parse JSON text refusing NaN/Infinity and duplicate keys (ProtocolError); ValueError/RecursionError if bad."""
    return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=unique_keys)


@dataclasses.dataclass(frozen=True)
class Envelope:
    """How one protocol's messages travel: JSON objects with ``"type"`` and ``"v": version``.

    ``too_big`` is the code for a text over the byte limit, ``error`` and ``unknown`` the exception classes raised
    (``unknown`` for a well-formed message of a type the registry lacks), and ``reply_id`` the rule of a request's
    ``"id"`` field: when set, an error about a message whose id can be read carries that id back.
    """

    version: int
    too_big: str
    error: type[ProtocolError] = ProtocolError
    unknown: type[ProtocolError] = UnknownMessageType
    reply_id: FieldRule | None = None

    def load(self, text: str, max_bytes: int | None) -> object:
        """Return the JSON value in one received text; raise ``error`` if it is too big or not JSON."""
        if max_bytes is not None and (
            len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes
        ):
            raise self.error(self.too_big, f"message: longer than {max_bytes} bytes")
        try:
            return strict_json(text)
        except ProtocolError as exc:
            raise self.error(exc.code, exc.message) from None
        except (ValueError, RecursionError):
            raise self.error(BAD_MESSAGE, "message: not valid JSON") from None

    def parse(self, text: str, types: Mapping[str, type[M]], *, max_bytes: int | None,
              unknown_code: str = BAD_MESSAGE) -> M:
        """Return the message in one received text; raise ``error`` (``unknown`` for a type not in ``types``)."""
        return self.parse_object(self.load(text, max_bytes), types, unknown_code=unknown_code)

    def parse_object(self, obj: object, types: Mapping[str, type[M]], *, unknown_code: str = BAD_MESSAGE) -> M:
        """Return the message in a decoded JSON value; raise ``error`` naming the bad field."""
        if not isinstance(obj, dict):
            raise self.error(BAD_MESSAGE, "message: expected a JSON object")
        rid = self._readable_id(obj)
        version = obj.get("v")
        if version is None:
            raise self.error(BAD_MESSAGE, "message.v: required", rid)
        if isinstance(version, bool) or not isinstance(version, int):
            raise self.error(BAD_MESSAGE, "message.v: expected an integer", rid)
        if version != self.version:
            raise self.error(UNSUPPORTED_VERSION, f"message.v: only version {self.version} is supported", rid)
        kind = obj.get("type")
        if kind is None:
            raise self.error(BAD_MESSAGE, "message.type: required", rid)
        if not isinstance(kind, str):
            raise self.error(BAD_MESSAGE, "message.type: expected a string", rid)
        cls = types.get(kind)
        if cls is None:
            shown = f" {kind!r}" if len(kind) <= 32 and kind.isascii() and kind.isidentifier() else ""
            raise self.unknown(unknown_code, f"message.type: unknown message type{shown}", rid)
        try:
            return cls.from_json(obj)
        except ProtocolError as exc:
            raise self.error(exc.code, exc.message, rid) from None

    def encode(self, msg: Message) -> str:
        """Return the compact JSON text of a message, with "type" and "v" in front."""
        obj = {"type": msg.TYPE, "v": self.version, **msg.to_json()}
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)

    def _readable_id(self, obj: dict[str, Any]) -> str | None:
        if self.reply_id is None:
            return None
        try:
            value = self.reply_id.decode(obj.get("id"), "message.id")
        except ProtocolError:
            return None
        return value if isinstance(value, str) else None
