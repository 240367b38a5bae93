"""Relay: connect a room through a tool people already run, with a mapping file instead of code.

Several Douyin/Kuaishou danmaku grabbers and console assistants re-broadcast what they capture as JSON on a
local websocket (DouyinBarrageGrab: ``ws://127.0.0.1:8888``, ``{"Type": 1, "Data": "<json string>"}``). A
*mapping* (YAML, validated once) says how such a frame becomes one of our events; ``RelaySource`` is a thin
websocket client that connects to the tool, reconnects with backoff and jitter, and feeds the mapped
events into a room (``Hub.run_source``). Replies are not posted by the relay (the tools only broadcast).

Mapping files (shipped: ``cohost/sources/mappings/*.yaml``, loadable by name; ``example.yaml`` documents
every key in its comments)::

    name: douyin_barrage_grab
    url: ws://127.0.0.1:8888          # where the tool usually listens (RelaySource's url wins)
    decode: [Data]                    # fields holding JSON in a string, parsed before matching
    rules:                            # tried in order; the first whose `when` matches maps the frame
      - when: {Type: 1}               # path: value, or path: [any, of, these]; no `when`: every frame
        type: chat                    # chat gift like enter follow order product | end (stream over) | skip
        id: Data.MsgId                # a path: dotted, list indexes as a[0] or a.0
        user: {id: [Data.User.Id, Data.User.DisplayId], name: Data.User.Nickname}   # a list: first present
        text: Data.Content
      - when: {Type: 5}
        type: gift
        count: Data.GiftCount
        value: {path: Data.DiamondCount, scale: 0.1, times_count: true}   # 抖币 → 元, per gift × count
      - when: {Type: [6, 7, 8]}
        type: skip                    # known, nothing for the room; a frame no rule matches is "unmapped"
      - when: {Type: 9}
        type: end                     # the stream is over: run() returns

A field is a path, a list of paths (the first one present and not null or "" wins), or a mapping with
``path`` (one or a list) or ``const``, and optionally ``default``, ``scale`` (count, value, paid),
``unit`` (ts) and ``times_count`` (value). ``extra: {name: field}`` keeps more fields on the event.

The codec is sans-I/O: ``map_message(mapping, obj)`` maps one decoded frame (pure), ``RelayDecoder.feed``
takes the frame's text, bounds it, maps it and drops ids seen before; ``decode_lines(mapping, path)`` runs
a capture file (one frame a line) through the same steps, for ``cohost decode --platform relay``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import websockets
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..errors import CohostError
from ..events import MAX_TEXT_CHARS, Event, EventError, parse_event
from .base import Backoff, SeenIds, SourceHealth, Submit

log = logging.getLogger(__name__)

DEFAULT_MAX_FRAME_BYTES = 256 * 1024  # a tool's frame over this is counted as an error and skipped
HARD_MAX_FRAME_BYTES = 4 * 1024 * 1024  # the websocket refuses (and drops the connection) past this
STABLE_S = 10.0  # a connection up this long (or that delivered a frame) resets the reconnect count
MAX_UNMAPPED_KEYS = 50
MAX_NAME_CHARS = 64  # User.name

EVENT_TYPES = ("chat", "gift", "like", "enter", "follow", "order", "product")
RuleType = Literal["chat", "gift", "like", "enter", "follow", "order", "product", "end", "skip"]
_ROOM_FIELDS = frozenset({"id", "user", "product_id", "gift", "count", "value", "ts", "extra"})
_FIELDS: dict[str, frozenset[str]] = {
    "chat": frozenset({"id", "user", "text", "paid", "ts", "extra"}),
    "product": frozenset({"id", "product_id", "ts", "extra"}),
    **{t: _ROOM_FIELDS for t in ("gift", "like", "enter", "follow", "order")},
    "end": frozenset(),
    "skip": frozenset(),
}
_REQUIRED: dict[str, tuple[str, ...]] = {"chat": ("id", "user", "text"), "product": ("product_id",)}
_NUMERIC = frozenset({"count", "value", "paid"})
# Event fields and names the model reads: an `extra` may not shadow them.
_RESERVED = frozenset({"type", "id", "user", "text", "paid", "ts", "product_id", "gift", "count", "value", "state",
                       "action"})


class MappingError(CohostError):
    """A relay mapping file cannot be used; the message names the file, line and field."""


# -- paths ---------------------------------------------------------------------------------------------

PathPart = str | int
_SEGMENT = re.compile(r"([^.\[\]]*)((?:\[-?\d+\])*)")
_MISSING: Any = object()


def parse_path(text: str) -> tuple[PathPart, ...]:
    """``Data.User.Nickname``, ``info[2][1]``, ``info.2.1`` → ("Data", "User", "Nickname"), ("info", 2, 1)...

    A dotted part made of digits indexes a list (and is a key in an object)."""
    if not isinstance(text, str) or not text or text != text.strip():
        raise ValueError(f"a path is a non-empty string like Data.User.Nickname or info[2], not {text!r}")
    parts: list[PathPart] = []
    for segment in text.split("."):
        m = _SEGMENT.fullmatch(segment)
        if m is None or not (m.group(1) or m.group(2)):
            raise ValueError(f"bad path {text!r}: write keys separated by dots and list indexes as [0]")
        if m.group(1):
            parts.append(m.group(1))
        parts.extend(int(i) for i in re.findall(r"-?\d+", m.group(2)))
    return tuple(parts)


def _step(cur: Any, part: PathPart) -> Any:
    if isinstance(cur, dict):
        return cur.get(part, _MISSING) if isinstance(part, str) else _MISSING
    if isinstance(cur, list):
        if isinstance(part, str):
            if not re.fullmatch(r"-?\d+", part):
                return _MISSING
            part = int(part)
        return cur[part] if -len(cur) <= part < len(cur) else _MISSING
    return _MISSING


def resolve(obj: Any, path: tuple[PathPart, ...]) -> Any:
    """The value at path, or _MISSING."""
    cur = obj
    for part in path:
        cur = _step(cur, part)
        if cur is _MISSING:
            return _MISSING
    return cur


def _replace(obj: Any, path: tuple[PathPart, ...], value: Any) -> Any:
    """A copy of obj with the value at path (which resolves) replaced; the rest is shared."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(obj, dict):
        new = dict(obj)
        new[head] = _replace(obj[head], rest, value)
        return new
    index = int(head)
    new_list = list(obj)
    new_list[index] = _replace(obj[index], rest, value)
    return new_list


# -- the mapping file ------------------------------------------------------------------------------------

JsonScalar = str | int | float | bool | None
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class FieldSpec(BaseModel):
    """Where one event field comes from: paths tried in order, or a constant; a default; numeric options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: tuple[str, ...] = ()
    const: JsonScalar = None
    default: JsonScalar = None
    scale: FiniteFloat = 1.0
    unit: Literal["s", "ms", "auto"] = "auto"
    times_count: bool = False
    _paths: tuple[tuple[PathPart, ...], ...] = PrivateAttr(default=())

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, str):
            return {"path": [v]}
        if isinstance(v, list):
            return {"path": v}
        if isinstance(v, dict):
            if isinstance(v.get("path"), str):
                return {**v, "path": [v["path"]]}
            return v
        raise ValueError("a field is a path (Data.Content), a list of paths (the first present wins), or a mapping "
                         "with path or const")

    @field_validator("path")
    @classmethod
    def _paths_parse(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            parse_path(p)
        return v

    @model_validator(mode="after")
    def _path_or_const(self) -> FieldSpec:
        if bool(self.path) == ("const" in self.model_fields_set):
            raise ValueError("give either path (one or a list) or const")
        self._paths = tuple(parse_path(p) for p in self.path)
        return self

    def get(self, obj: Any) -> Any:
        """The value for this field in obj, or _MISSING."""
        if "const" in self.model_fields_set:
            return self.const
        for path in self._paths:
            value = resolve(obj, path)
            if value is not _MISSING and value is not None and value != "":
                return value
        return self.default if "default" in self.model_fields_set else _MISSING


class UserSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: FieldSpec | None = None
    name: FieldSpec | None = None


WhenValue = JsonScalar | list[JsonScalar]


class Rule(BaseModel):
    """One kind of frame: how to recognise it (``when``) and what event it becomes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    when: dict[str, WhenValue] = Field(default_factory=dict)
    decode: tuple[str, ...] = ()
    type: RuleType
    note: str = ""
    id: FieldSpec | None = None
    user: UserSpec | None = None
    text: FieldSpec | None = None
    paid: FieldSpec | None = None
    product_id: FieldSpec | None = None
    gift: FieldSpec | None = None
    count: FieldSpec | None = None
    value: FieldSpec | None = None
    ts: FieldSpec | None = None
    extra: dict[str, FieldSpec] = Field(default_factory=dict)
    _when: tuple[tuple[tuple[PathPart, ...], WhenValue], ...] = PrivateAttr(default=())
    _decode: tuple[tuple[PathPart, ...], ...] = PrivateAttr(default=())

    @field_validator("decode", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("when")
    @classmethod
    def _when_paths(cls, v: dict[str, WhenValue]) -> dict[str, WhenValue]:
        for p in v:
            parse_path(p)
        return v

    @field_validator("decode")
    @classmethod
    def _decode_paths(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            parse_path(p)
        return v

    def model_post_init(self, context: Any) -> None:
        self._when = tuple((parse_path(p), expected) for p, expected in self.when.items())
        self._decode = tuple(parse_path(p) for p in self.decode)

    def matches(self, obj: Any) -> bool:
        return all(_matches(resolve(obj, path), expected) for path, expected in self._when)


class RelayMapping(BaseModel):
    """A mapping file: a tool's JSON frames → our events. Load with ``load_mapping`` (errors name lines)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "relay"
    description: str = ""
    url: str | None = None
    subscribe: tuple[str | dict[str, Any], ...] = ()
    max_frame_bytes: int = Field(DEFAULT_MAX_FRAME_BYTES, ge=1024, le=HARD_MAX_FRAME_BYTES)
    decode: tuple[str, ...] = ()
    rules: tuple[Rule, ...]
    _decode: tuple[tuple[PathPart, ...], ...] = PrivateAttr(default=())
    _keys: tuple[tuple[str, tuple[PathPart, ...]], ...] = PrivateAttr(default=())

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", v):
            raise ValueError("a name is 1-64 letters, digits, '_', '-' or '.'")
        return v

    @field_validator("url")
    @classmethod
    def _ws_url(cls, v: str | None) -> str | None:
        if v is not None and urlsplit(v).scheme not in ("ws", "wss"):
            raise ValueError(f"the tool's url must start with ws:// or wss://, not {v!r}")
        return v

    @field_validator("decode", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("decode")
    @classmethod
    def _decode_paths(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            parse_path(p)
        return v

    @model_validator(mode="after")
    def _rules_make_sense(self, info: ValidationInfo) -> RelayMapping:
        problems = _rule_problems(self)
        collect = (info.context or {}).get("problems")
        if collect is not None:
            collect.extend(problems)
        elif problems:
            loc, msg = problems[0]
            raise ValueError(f"{_loc_text(loc)}: {msg}")
        return self

    def model_post_init(self, context: Any) -> None:
        self._decode = tuple(parse_path(p) for p in self.decode)
        keys: dict[str, tuple[PathPart, ...]] = {}
        for rule in self.rules:
            for text, (path, _) in zip(rule.when, rule._when, strict=True):
                keys.setdefault(text, path)
        self._keys = tuple(keys.items())

    def subscribe_frames(self) -> list[str]:
        return [s if isinstance(s, str) else json.dumps(s, ensure_ascii=False) for s in self.subscribe]


def _rule_problems(m: RelayMapping) -> list[tuple[tuple[Any, ...], str]]:
    """What pydantic's shapes cannot say: fields that do not apply to a rule's type, missing required fields,
    options on the wrong field, reserved extra names, rules that can never match."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    if not m.rules:
        problems.append((("rules",), "a mapping needs at least one rule"))
    catch_all: int | None = None
    for i, rule in enumerate(m.rules):
        at = ("rules", i)
        if catch_all is not None:
            problems.append((at, f"this rule never matches: rules[{catch_all}] before it has no 'when' and "
                                 "matches every frame (put catch-all rules last)"))
        if not rule.when and catch_all is None:
            catch_all = i
        allowed = _FIELDS[rule.type]
        given = rule.model_fields_set - {"when", "decode", "type", "note"}
        for name in sorted(given - allowed):
            takes = ", ".join(sorted(allowed)) or "nothing but when, decode and note"
            problems.append(((*at, name), f"'{name}' does not apply to {rule.type} rules (they take: {takes})"))
        for name in _REQUIRED.get(rule.type, ()):
            if getattr(rule, name) is None:
                problems.append((at, f"a {rule.type} rule needs '{name}'"))
        if rule.type == "chat" and rule.user is not None and rule.user.id is None:
            problems.append(((*at, "user"), "a chat rule needs 'user: {id: ...}' (who said it)"))
        specs: list[tuple[tuple[Any, ...], str, FieldSpec]] = []
        for name in given & allowed:
            spec = getattr(rule, name)
            if isinstance(spec, FieldSpec):
                specs.append(((*at, name), name, spec))
            elif isinstance(spec, UserSpec):
                specs.extend(((*at, name, k), f"user.{k}", s) for k in ("id", "name")
                             if (s := getattr(spec, k)) is not None)
        for key, spec in rule.extra.items():
            if key in _RESERVED or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", key):
                problems.append(((*at, "extra", key), f"'{key}' cannot be an extra field name (taken by the event, "
                                                      "or not a plain identifier)"))
            specs.append(((*at, "extra", key), f"extra.{key}", spec))
        for loc, name, spec in specs:
            opts = spec.model_fields_set
            if "unit" in opts and name != "ts":
                problems.append(((*loc, "unit"), f"'unit' applies to ts only, not {name}"))
            if "scale" in opts and name not in _NUMERIC:
                problems.append(((*loc, "scale"), f"'scale' applies to count, value and paid only, not {name}"))
            if "times_count" in opts and name != "value":
                problems.append(((*loc, "times_count"), f"'times_count' applies to value only, not {name}"))
    return problems


def _matches(actual: Any, expected: WhenValue) -> bool:
    if isinstance(expected, list):
        return any(_same(actual, e) for e in expected)
    return _same(actual, expected)


def _same(actual: Any, expected: JsonScalar) -> bool:
    if expected is None:
        return actual is _MISSING or actual is None
    if actual is _MISSING or isinstance(actual, dict | list):
        return False
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if actual == expected:
        return True
    # 1 and "1": tools are not consistent about numbers in strings
    if isinstance(actual, str) != isinstance(expected, str):
        text, number = (actual, expected) if isinstance(actual, str) else (expected, actual)
        try:
            return float(text) == number  # type: ignore[arg-type]
        except ValueError:
            return False
    return False


# -- loading ---------------------------------------------------------------------------------------------


def packaged_mappings() -> list[str]:
    """Names of the mapping files shipped with cohost."""
    folder = resources.files("cohost.sources").joinpath("mappings")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_mapping(name_or_path: str | Path) -> RelayMapping:
    """A packaged mapping by name (``douyin_barrage_grab``) or a mapping file by path. MappingError names the
    file, line and field of what is wrong."""
    text_arg = str(name_or_path)
    is_path = (isinstance(name_or_path, Path) or text_arg.endswith((".yaml", ".yml")) or "/" in text_arg
               or "\\" in text_arg or Path(text_arg).is_file())
    if is_path:
        path = Path(name_or_path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise MappingError(f"mapping file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise MappingError(f"cannot read mapping file {path}: {e}") from None
        return parse_mapping(text, source=str(path), name=path.stem)
    known = packaged_mappings()
    if text_arg not in known:
        raise MappingError(f"no packaged relay mapping named {text_arg!r}; packaged: {', '.join(known)} "
                           "(or give the path of a .yaml mapping file)")
    res = resources.files("cohost.sources").joinpath("mappings", f"{text_arg}.yaml")
    return parse_mapping(res.read_text(encoding="utf-8"), source=f"{text_arg}.yaml (packaged)", name=text_arg)


def parse_mapping(text: str, *, source: str = "<mapping>", name: str | None = None) -> RelayMapping:
    """Validate a mapping given as YAML text; ``name`` is used when the file sets none."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        what = getattr(e, "problem", None) or str(e)
        hint = (" (inside [...] or {...}, quote a path with list indexes: \"info[2][1]\")"
                if "expected ','" in what and "got '['" in what else "")
        raise MappingError(f"{source}: {where}not valid YAML: {what}{hint}") from None
    if not isinstance(data, dict):
        raise MappingError(f"{source}: the top level must be a mapping with 'rules' (see the example mapping)")
    duplicates = list(_duplicate_keys(root))
    problems: list[tuple[tuple[Any, ...], str]] = []
    if name and "name" not in data and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        data = {**data, "name": name}
    mapping = None
    try:
        mapping = RelayMapping.model_validate(data, context={"problems": problems})
    except ValidationError as e:
        problems.extend((tuple(err["loc"]), err["msg"]) for err in e.errors())
    if problems or duplicates or mapping is None:
        located = [(_line_of(root, loc) or 0, _loc_text(_in_file(data, loc)), msg) for loc, msg in problems]
        located += [(line, _loc_text(loc), msg) for loc, msg, line in duplicates]
        located.sort(key=lambda p: p[0])
        lines = [f"{source}: invalid relay mapping:"]
        for line, where, msg in located:
            msg = msg.removeprefix("Value error, ")
            lines.append(f"  - {f'line {line}, ' if line else ''}{where or 'top level'}: {msg}")
        raise MappingError("\n".join(lines))
    return mapping


def _in_file(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """loc as far as the file has it (pydantic adds the parts of a normalised shorthand), plus a last part the
    file lacks (the name of a missing field)."""
    out: list[Any] = []
    for i, part in enumerate(loc):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            if i == len(loc) - 1 and isinstance(data, dict):
                out.append(part)
            break
        out.append(part)
    return tuple(out)


def _duplicate_keys(node: Any, loc: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str, int]]:
    """Keys given twice in one mapping (PyYAML keeps the last without a word): (loc, message, line)."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            k = key.value if isinstance(key, yaml.ScalarNode) else None
            line = key.start_mark.line + 1
            if k is not None and k in seen:
                yield (*loc, k), f"'{k}' appears twice here (first on line {seen[k]}; YAML keeps only the last)", line
            if k is not None:
                seen.setdefault(k, line)
            yield from _duplicate_keys(value, (*loc, k))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*loc, i))


_TAGS = {"str", "int", "float", "bool", "none"}


def _loc_text(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _TAGS or "[" in str(part):  # pydantic's union and validator tags
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_of(root: Any, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest node along loc (parts not in the file are skipped)."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
        found = None
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)), None)
            if found is not None:
                key_line = next(k.start_mark.line for k, v in node.value if v is found)
                line = key_line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            found = node.value[part]
            line = found.start_mark.line + 1
        if found is not None:
            node = found
    return line


# -- mapping one frame -----------------------------------------------------------------------------------

MappedKind = Literal["event", "duplicate", "unmapped", "skip", "end", "error"]


@dataclass(frozen=True)
class Mapped:
    """What became of one frame: an event, or why there is none."""

    kind: MappedKind
    event: Event | None = None
    rule: int | None = None     # the index of the rule that matched
    key: str | None = None      # event/duplicate: the dedupe key; unmapped: what it is counted under
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.rule is not None:
            out["rule"] = self.rule
        if self.event is not None:
            out["event"] = self.event.model_dump(mode="json", exclude_none=True)
        if self.key is not None:
            out["key"] = self.key
        if self.error:
            out["error"] = self.error
        return out


class _FrameError(Exception):
    pass


def _load_json(frame: str | bytes | bytearray | memoryview, limit: int) -> Any:
    """One frame of the tool's, bounded. Raises _FrameError, never anything else."""
    if isinstance(frame, bytes | bytearray | memoryview):
        if len(frame) > limit:
            raise _FrameError(f"frame of {len(frame)} bytes is over the {limit}-byte limit")
        try:
            frame = bytes(frame).decode("utf-8")
        except UnicodeDecodeError:
            raise _FrameError("binary frame that is not UTF-8 text") from None
    if len(frame) > limit or len(frame.encode("utf-8", "surrogatepass")) > limit:
        raise _FrameError(f"frame of {len(frame.encode('utf-8', 'surrogatepass'))} bytes is over the "
                          f"{limit}-byte limit")
    try:
        return json.loads(frame)
    except RecursionError:
        raise _FrameError("JSON nested too deep") from None
    except ValueError as e:  # JSONDecodeError, and integers past Python's digit limit
        raise _FrameError(f"not JSON: {_cut(str(e), 120)}") from None


def _decode(obj: Any, paths: tuple[tuple[PathPart, ...], ...], limit: int) -> Any:
    for path in paths:
        value = resolve(obj, path)
        if isinstance(value, str):
            try:
                obj = _replace(obj, path, _load_json(value, limit))
            except _FrameError as e:
                raise _FrameError(f"{_path_text(path)}: {e}") from None
    return obj


def map_message(mapping: RelayMapping, obj: Any) -> Event | None:
    """The event one decoded frame maps to, or None (unmapped, skipped, the stream's end, or invalid)."""
    return apply_mapping(mapping, obj).event


def apply_mapping(mapping: RelayMapping, obj: Any) -> Mapped:
    """Map one decoded frame (pure: no dedupe, no counting). Never raises."""
    try:
        return _apply(mapping, obj)
    except _FrameError as e:
        return Mapped("error", error=str(e))
    except Exception as e:  # a mapping can only misread a frame: never let a frame take the source down
        log.exception("relay mapping %s failed on a frame", mapping.name)
        return Mapped("error", error=f"internal error: {type(e).__name__}: {_cut(str(e))}")


def _apply(mapping: RelayMapping, obj: Any) -> Mapped:
    if not isinstance(obj, dict):
        return Mapped("error", error="a frame must be a JSON object")
    limit = mapping.max_frame_bytes
    obj = _decode(obj, mapping._decode, limit)
    index, rule = next(((i, r) for i, r in enumerate(mapping.rules) if r.matches(obj)), (None, None))
    if rule is None or index is None:
        return Mapped("unmapped", key=_signature(mapping, obj))
    if rule.type in ("end", "skip"):
        return Mapped(rule.type, rule=index)
    obj = _decode(obj, rule._decode, limit)
    try:
        event_dict = _event_dict(rule, obj)
    except _FrameError as e:
        return Mapped("error", rule=index, error=f"rules[{index}] ({rule.type}): {e}")
    try:
        event = parse_event(event_dict)
    except EventError as e:
        return Mapped("error", rule=index, error=f"rules[{index}] ({rule.type}): {e}")
    msg_id = event_dict.get("id")
    return Mapped("event", event=event, rule=index, key=f"{rule.type}:{msg_id}" if msg_id else None)


def _event_dict(rule: Rule, obj: Any) -> dict[str, Any]:
    kind = rule.type
    out: dict[str, Any] = {"type": kind}
    if rule.id is not None and (v := rule.id.get(obj)) is not _MISSING:
        out["id"] = _as_str(v, "id")
    elif kind == "chat":
        raise _FrameError("no id in the frame (a chat needs one)")
    if rule.user is not None:
        uid = rule.user.id.get(obj) if rule.user.id is not None else _MISSING
        if uid is not _MISSING:
            user = {"id": _as_str(uid, "user.id")}
            if rule.user.name is not None and (name := rule.user.name.get(obj)) is not _MISSING:
                user["name"] = _as_str(name, "user.name")[:MAX_NAME_CHARS]
            out["user"] = user
        elif kind == "chat":
            raise _FrameError("no user id in the frame (a chat needs one)")
    if rule.text is not None and (v := rule.text.get(obj)) is not _MISSING:
        out["text"] = _as_str(v, "text")[:MAX_TEXT_CHARS]
    elif kind == "chat":
        raise _FrameError("no text in the frame")
    for name in ("product_id", "gift"):
        spec = getattr(rule, name)
        if spec is not None and (v := spec.get(obj)) is not _MISSING:
            out[name] = _as_str(v, name)
    if rule.count is not None and (v := rule.count.get(obj)) is not _MISSING:
        out["count"] = round(_as_number(v, "count") * rule.count.scale)
    for name in ("value", "paid"):
        spec = getattr(rule, name)
        if spec is not None and (v := spec.get(obj)) is not _MISSING:
            number = _as_number(v, name) * spec.scale
            if spec.times_count:
                number *= out.get("count", 1)
            out[name] = number
    if rule.ts is not None and (v := rule.ts.get(obj)) is not _MISSING:
        ts = _as_ts(v, rule.ts.unit)
        if ts is not None:
            out["ts"] = ts
    for name, spec in rule.extra.items():
        if (v := spec.get(obj)) is not _MISSING:
            out[name] = v
    return out


def _as_str(v: Any, what: str) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float) and math.isfinite(v):
        return str(int(v)) if v.is_integer() else repr(v)
    raise _FrameError(f"{what}: expected text or a number, got {type(v).__name__}")


def _as_number(v: Any, what: str) -> float:
    number: float | None = None
    if isinstance(v, int | float) and not isinstance(v, bool):
        number = float(v)
    elif isinstance(v, str):
        try:
            number = float(v.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise _FrameError(f"{what}: expected a number, got {_cut(repr(v))}")
    return number


def _as_ts(v: Any, unit: str) -> float | None:
    """Unix seconds; a ts that is not a number (a formatted time) is left out: the server's time is used."""
    try:
        number = _as_number(v, "ts")
    except _FrameError:
        return None
    if unit == "ms" or (unit == "auto" and number > 1e11):  # 1e11 s is the year 5138; 1e11 ms is 1973
        number /= 1000.0
    return number if number > 0 else None


def _signature(mapping: RelayMapping, obj: Any) -> str:
    """What an unmapped frame is counted under: the values of the paths the rules match on (Type=10)."""
    parts = []
    for text, path in mapping._keys:
        value = resolve(obj, path)
        if value is not _MISSING and not isinstance(value, dict | list):
            parts.append(f"{text}={_cut(str(value), 40)}")
    return ",".join(parts) or "other"


def _path_text(path: tuple[PathPart, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _cut(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


# -- the codec: text in, mapped frames out, ids seen once --------------------------------------------------


class RelayDecoder:
    """Sans-I/O: ``feed`` one frame of the tool's text, get what it maps to. Ids seen before come back as
    ``duplicate``; ``counts`` has every kind, ``unmapped`` the kinds of frames no rule matched."""

    def __init__(self, mapping: RelayMapping, *, seen: SeenIds | None = None):
        self.mapping = mapping
        self.seen = seen or SeenIds()
        self.counts: Counter[str] = Counter()
        self.unmapped: Counter[str] = Counter()
        self.last_error = ""

    def feed(self, frame: str | bytes | bytearray | memoryview) -> Mapped:
        try:
            obj = _load_json(frame, self.mapping.max_frame_bytes)
        except _FrameError as e:
            result = Mapped("error", error=str(e))
        else:
            result = apply_mapping(self.mapping, obj)
        if result.kind == "event" and result.key is not None and not self.seen.first_time(result.key):
            result = Mapped("duplicate", event=result.event, rule=result.rule, key=result.key)
        self.counts[result.kind] += 1
        if result.kind == "unmapped" and result.key is not None:
            key = result.key if result.key in self.unmapped or len(self.unmapped) < MAX_UNMAPPED_KEYS else "other"
            self.unmapped[key] += 1
        elif result.kind == "error":
            self.last_error = result.error
        return result


def decode_lines(mapping: RelayMapping | str | Path, path: str | Path) -> Iterator[tuple[int, Mapped]]:
    """Run a capture (one frame of the tool's a line; blank lines skipped) through the mapping:
    (line number, what it maps to), duplicates marked as the live source would drop them."""
    m = mapping if isinstance(mapping, RelayMapping) else load_mapping(mapping)
    path = Path(path)
    decoder = RelayDecoder(m)
    try:
        f = path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
    except FileNotFoundError:
        raise CohostError(f"capture not found: {path}") from None
    with f:
        for n, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            yield n, decoder.feed(line)


# -- the client --------------------------------------------------------------------------------------------


def _loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


@dataclass
class RelayStats:
    connects: int = 0     # connections made
    last_close: str = ""  # why the last one ended


class RelaySource:
    """A room's events from a tool's local websocket, through a mapping. A ``Source`` for ``Hub.run_source``.

    Connects, reads text frames, maps them (bad frames are counted in ``health.errors`` and skipped; the
    connection stays), drops ids seen before, submits events; reconnects with capped exponential backoff
    and jitter whenever the connection drops or cannot be made, and says so in ``health``. ``run`` returns
    when the mapping says the stream ended (``stop_on_end``) or the url cannot work."""

    def __init__(self, url: str | None, mapping: RelayMapping | str | Path, *, name: str | None = None,
                 backoff: Backoff | None = None, stop_on_end: bool = True, open_timeout_s: float = 10.0,
                 ping_interval_s: float | None = 20.0, headers: dict[str, str] | None = None):
        self.mapping = mapping if isinstance(mapping, RelayMapping) else load_mapping(mapping)
        url = url or self.mapping.url
        if not url:
            raise CohostError(f"relay {self.mapping.name}: no url for the tool's websocket (the mapping sets none)")
        if urlsplit(url).scheme not in ("ws", "wss"):
            raise CohostError(f"relay url must start with ws:// or wss://, not {url!r}")
        self.url = url
        self.name = name or f"relay:{self.mapping.name}"
        self.health = SourceHealth(self.name, message="正在连接转发工具…", detail=url)
        self.decoder = RelayDecoder(self.mapping)
        self.backoff = backoff or Backoff()
        self.stop_on_end = stop_on_end
        self.stats = RelayStats()
        self._connect_kw: dict[str, Any] = {
            "open_timeout": open_timeout_s, "ping_interval": ping_interval_s, "ping_timeout": ping_interval_s,
            "close_timeout": 2.0, "max_size": min(HARD_MAX_FRAME_BYTES, 4 * self.mapping.max_frame_bytes),
            "max_queue": 64, "proxy": None if _loopback(url) else True, "additional_headers": headers,
        }

    async def run(self, submit: Submit) -> None:
        attempt = 0
        ever_connected = False
        try:
            while True:
                connected_at: float | None = None
                got_frame = False
                try:
                    async with websockets.connect(self.url, **self._connect_kw) as ws:
                        connected_at = time.monotonic()
                        ever_connected = True
                        self.stats.connects += 1
                        self.health.set("live", "转发工具已连接", self.url, attempt=0)
                        log.info("%s: connected to %s", self.name, self.url)
                        for frame in self.mapping.subscribe_frames():
                            await ws.send(frame)
                        async for frame in ws:
                            got_frame = True
                            if self._handle(frame, submit):
                                self.health.set("ended", "直播已结束", self.url)
                                log.info("%s: the stream ended", self.name)
                                return
                        why = _close_text(ws.close_code, ws.close_reason)
                except websockets.InvalidURI as e:
                    self.health.set("failed", "转发工具地址无效", str(e))
                    return
                except (OSError, TimeoutError, websockets.WebSocketException) as e:
                    why = _error_text(e)
                self.stats.last_close = why
                if got_frame or (connected_at is not None and time.monotonic() - connected_at >= STABLE_S):
                    attempt = 0
                    self.backoff.reset()
                attempt += 1
                if ever_connected:
                    message = f"转发工具连接中断，正在重连（第{attempt}次）"
                else:
                    message = f"连不上转发工具，正在重试（第{attempt}次）：请确认工具已启动"
                self.health.set("reconnecting", message, f"{self.url}: {why}", attempt=attempt)
                log.info("%s: %s (%s)", self.name, why, self.url)
                await asyncio.sleep(self.backoff.next_delay())
        except asyncio.CancelledError:
            self.health.set("stopped", "已停止", self.url)
            raise

    def _handle(self, frame: str | bytes, submit: Submit) -> bool:
        """One frame; True when the stream ended and the source should stop."""
        result = self.decoder.feed(frame)
        if result.kind == "event" and result.event is not None:
            if submit(result.event):
                self.health.events += 1
        elif result.kind == "error":
            self.health.errors += 1
            self.health.detail = f"{self.url}; last bad frame: {result.error}"
            log.debug("%s: bad frame: %s", self.name, result.error)
        elif result.kind == "end":
            return self.stop_on_end
        return False


def _close_text(code: int | None, reason: str | None) -> str:
    if code is None:
        return "connection closed"
    return f"closed by the tool ({code}{' ' + reason if reason else ''})"


def _error_text(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused: is the tool running?"
    if isinstance(e, TimeoutError):
        return "timed out connecting"
    if isinstance(e, websockets.ConnectionClosed):
        return "connection dropped" + (f" ({e.rcvd.code})" if e.rcvd is not None else "")
    return f"{type(e).__name__}: {_cut(str(e), 120)}"


__all__ = ["FieldSpec", "Mapped", "MappingError", "RelayDecoder", "RelayMapping", "RelaySource", "Rule",
           "apply_mapping", "decode_lines", "load_mapping", "map_message", "packaged_mappings", "parse_mapping",
           "parse_path"]
