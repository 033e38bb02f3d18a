"""The one Jinja2 sandbox every template renders in, bounded in time and memory.

Jinja2's ``SandboxedEnvironment`` keeps a template away from Python internals, but not from
the machine: ``'a' * 300000000``, ``'x'.center(10**9)`` or two nested ``range(20000)`` loops
are legal templates. ``BoundedSandbox`` adds limits, each named in the error a template that
passes it gets (``TemplateLimitExceeded``, a ``TemplateRuntimeError``):

- **size**: an operator, filter or method that makes text (``*``, ``%``, ``+``, ``~``,
  ``center``, ``indent``, ``format``, ``ljust``, ...) is refused *before* it builds a text
  longer than ``MAX_TEXT_CHARS`` or a list longer than ``MAX_ITEMS``; an integer past
  ``MAX_INT_BITS`` is refused likewise; a list or object printed or passed to a filter is
  measured first (nested lists that share items can be exponentially large when printed);
- **output**: rendering stops once the output passes ``MAX_OUTPUT_CHARS``;
- **iterations**: all ``range()`` calls of one render together yield at most
  ``MAX_RANGE_ITEMS`` numbers;
- **time**: a template that can run long (it loops, defines macros, calls ``range`` or a
  filter whose cost grows with its input; decided once from the parsed template) stops itself
  after ``TIME_LIMIT_S``, and ``render`` runs it in the compute pool, off the event loop.
  Other templates (``Hello {{ name }}``, the hot path) render in place.

Nodes render through ``render`` (async); ``Template.render`` still works anywhere and applies
every limit in the calling thread.
"""

from __future__ import annotations

import functools
import itertools
import re
import threading
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any, Final, TypeVar

from jinja2 import StrictUndefined, Template, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import TemplateRuntimeError
from jinja2.sandbox import SandboxedEnvironment, SandboxedFormatter

from flowloom.nodes._compute import ComputeTimedOut, call_with_deadline, run_off_loop

__all__ = [
    "MAX_INT_BITS",
    "MAX_ITEMS",
    "MAX_OUTPUT_CHARS",
    "MAX_RANGE_ITEMS",
    "MAX_TEXT_CHARS",
    "TIME_LIMIT_S",
    "BoundedSandbox",
    "BoundedTemplate",
    "TemplateLimitExceeded",
    "render",
    "sandbox",
]

T = TypeVar("T")

MAX_OUTPUT_CHARS: Final = 4 * 1024 * 1024
"""Characters one render may output: above the largest request body, so a template that only
passes a webhook body on is never cut, and small enough to hold many renders in memory."""
MAX_TEXT_CHARS: Final = MAX_OUTPUT_CHARS
"""The longest text a template may build with an operator, a filter or a method."""
MAX_ITEMS: Final = 100_000
"""The longest list a template may build (``*``, ``+``, ``extend``); Jinja's own cap on one
``range``."""
MAX_INT_BITS: Final = 64 * 1024
"""The largest integer a template may compute with ``*`` or ``**`` (about 19,700 digits)."""
MAX_RANGE_ITEMS: Final = 1_000_000
"""Numbers all ``range()`` calls of one render may yield together."""
TIME_LIMIT_S: Final = 2.0
"""Seconds a template that can run long may take; it stops itself then."""

# Filters whose cost grows with the size of their input (Python loops), so a template using
# them renders off the loop. Cheap filters (upper, default, length, ...) keep it inline.
_LONG_FILTERS: Final = frozenset(
    {
        "batch", "dictsort", "groupby", "map", "max", "min", "pprint", "reject",
        "rejectattr", "select", "selectattr", "slice", "sort", "sum", "unique",
        "urlize", "wordwrap", "xmlattr",
    }
)  # fmt: skip
# Filters that only look at the top of a value (or at numbers), so it is not measured first.
_SHALLOW_FILTERS: Final = frozenset(
    {
        "abs", "attr", "batch", "count", "d", "default", "dictsort", "first", "float",
        "groupby", "int", "items", "last", "length", "list", "map", "random", "reject",
        "rejectattr", "reverse", "round", "safe", "select", "selectattr", "slice",
        "filesizeformat",
    }
)  # fmt: skip
_MAX_JSON_INDENT: Final = 16
"""``tojson(indent=...)`` repeats the indent on every line, once per level of nesting."""
_MAX_DEPTH: Final = 200
"""Lists nested deeper than this count as too large to print (Python's repr gives up too)."""
_TEXT: Final = (str, bytes, bytearray)
_SEQUENCES: Final = (*_TEXT, list, tuple)
_METHOD_WIDTH: Final = frozenset({"ljust", "rjust", "center", "zfill"})
_GROWING_METHODS: Final = frozenset({"append", "extend", "insert", "update", "setdefault"})
_PERCENT_SPEC: Final = re.compile(
    r"%(?:\([^)]*\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?[hlL]?[a-zA-Z%]"
)
_FORMAT_SPEC: Final = re.compile(
    r"^(?:.?[<>=^])?[+\- ]?z?#?0?(?P<width>\d+)?[,_]?(?:\.(?P<precision>\d+))?"
)


class TemplateLimitExceeded(TemplateRuntimeError):
    """A template went past one of the sandbox's limits; the message names the limit."""


# The limits of the render running in this thread: one range budget per render.
_local = threading.local()


class _Budget:
    __slots__ = ("range_left",)

    def __init__(self) -> None:
        self.range_left = MAX_RANGE_ITEMS


def _limit(what: str, limit: int, unit: str) -> TemplateLimitExceeded:
    return TemplateLimitExceeded(f"{what} passes the limit of {limit:,} {unit}")


def _measure(value: Any, budget: int) -> int:
    """About how many characters ``str(value)`` has, counting past ``budget`` only a little.

    Walks lists, tuples and objects without building the text. Each container is measured
    once (by identity), so nested lists that share their items, which print to gigabytes,
    cost one step per distinct list; a list nested deeper than ``_MAX_DEPTH`` (or one that
    contains itself) counts as too large.
    """
    memo: dict[int, int] = {}

    def size(item: Any, depth: int) -> int:
        known = memo.get(id(item))
        if known is not None:
            return known
        if depth > _MAX_DEPTH:
            return budget + 1
        total = 2
        children = itertools.chain(item.keys(), item.values()) if isinstance(item, dict) else item
        for child in children:
            kind = child.__class__
            if kind is str:
                total += len(child) + 4
            elif kind is int:
                total += child.bit_length() // 3 + 3
            elif kind is float or kind is bool or child is None:
                total += 24
            else:
                leaf = _leaf(child)
                total += leaf if leaf >= 0 else size(child, depth + 1)
            if total > budget:
                break
        memo[id(item)] = total
        return total

    leaf = _leaf(value)
    return leaf if leaf >= 0 else size(value, 0)


def _leaf(value: Any) -> int:
    """The printed size of a value that holds no others, or -1 for a list, tuple or object."""
    if isinstance(value, str):
        return len(value) + 4
    if isinstance(value, list | tuple | dict):
        return -1
    if isinstance(value, int):
        return value.bit_length() // 3 + 2
    return 24


def _check_printable(value: Any, what: str) -> None:
    if isinstance(value, str):
        if len(value) > MAX_TEXT_CHARS:
            raise _limit(what, MAX_TEXT_CHARS, "characters")
    elif (
        isinstance(value, list | tuple | dict) and _measure(value, MAX_TEXT_CHARS) > MAX_TEXT_CHARS
    ):
        raise _limit(f"{what} printed as text", MAX_TEXT_CHARS, "characters")


def _check_text(length: int, what: str) -> None:
    if length > MAX_TEXT_CHARS:
        raise _limit(what, MAX_TEXT_CHARS, "characters")


def _check_items(count: int, what: str) -> None:
    if count > MAX_ITEMS:
        raise _limit(what, MAX_ITEMS, "items")


def _width(spec: str | None, what: str) -> None:
    if spec is None:
        return
    if spec == "*":
        raise TemplateLimitExceeded(f"{what}: a width or precision given by '*' is not allowed")
    _check_text(int(spec), f"{what} width")


def _check_percent(fmt: str, args: Any) -> None:
    """Refuse ``fmt % args`` if a width or precision in ``fmt``, or an argument, is too large."""
    for spec in _PERCENT_SPEC.finditer(fmt):
        _width(spec["width"], "a % format")
        _width(spec["precision"], "a % format")
    values = (
        args.values() if isinstance(args, dict) else args if isinstance(args, tuple) else [args]
    )
    total = len(fmt)
    for value in values:
        total += _measure(value, MAX_TEXT_CHARS)
    _check_text(total, "the text made with %")


def _binop(operator: str, left: Any, right: Any) -> None:
    """Refuse the intercepted ``left <operator> right`` before it allocates too much."""
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(times, int) and isinstance(seq, _SEQUENCES):
                count = len(seq) * max(times, 0)
                if isinstance(seq, _TEXT):
                    _check_text(count, "the text made with *")
                else:
                    _check_items(count, "the list made with *")
        both_ints = isinstance(left, int) and isinstance(right, int)
        if both_ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _limit("the number made with *", MAX_INT_BITS, "bits")
    elif operator == "**":
        both_ints = isinstance(left, int) and isinstance(right, int)
        if both_ints and abs(left) > 1 and right > 0 and right * left.bit_length() > MAX_INT_BITS:
            raise _limit("the number made with **", MAX_INT_BITS, "bits")
    elif operator == "+":
        if isinstance(left, _TEXT) and isinstance(right, _TEXT):
            _check_text(len(left) + len(right), "the text made with +")
        elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
            _check_items(len(left) + len(right), "the list made with +")
    elif operator == "%" and isinstance(left, str):
        _check_percent(left, right)


def _checked_call(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """The arguments for a call of ``method``, refused if a text or list method would build a
    value past the limits (a lazy sequence given to ``join`` is read into a list to count it)."""
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if isinstance(owner, _TEXT):
        if name in _METHOD_WIDTH and args and isinstance(args[0], int):
            _check_text(args[0], f"the width given to {name}()")
        elif name == "expandtabs":
            size = args[0] if args else kwargs.get("tabsize", 8)
            tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
            if isinstance(size, int):
                _check_text(len(owner) + tabs * size, "the text made by expandtabs()")
        elif name == "replace" and len(args) >= 2:
            _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
        elif name == "join" and args:
            parts = _listed(args[0])
            total = len(owner) * max(len(parts) - 1, 0) + _measure(parts, MAX_TEXT_CHARS)
            _check_text(total, "the text made by join()")
            args = (parts, *args[1:])
        elif name == "translate" and args and isinstance(args[0], dict):
            longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
            _check_text(len(owner) * longest, "the text made by translate()")
    elif isinstance(owner, list) and name in ("extend", "append", "insert"):
        added = len(args[0]) if name == "extend" and args and hasattr(args[0], "__len__") else 1
        _check_items(len(owner) + added, f"the list grown by {name}()")
    elif isinstance(owner, dict) and name in ("update", "setdefault"):
        added = len(args[0]) if name == "update" and args and hasattr(args[0], "__len__") else 1
        _check_items(len(owner) + added, f"the object grown by {name}()")
    return args


def _listed(values: Any) -> Any:
    # A generator can be counted only by reading it; a list of at most MAX_ITEMS is cheap.
    if isinstance(values, str | list | tuple) or not hasattr(values, "__iter__"):
        return values
    listed = []
    for value in values:
        listed.append(value)
        if len(listed) > MAX_ITEMS:
            raise _limit("the items to join", MAX_ITEMS, "items")
    return listed


def _check_replace(text: Any, old: Any, new: Any, count: Any) -> None:
    try:
        hits = len(text) + 1 if len(old) == 0 else text.count(old)
        growth = len(new) - len(old)
    except TypeError:
        return  # not text: the call itself fails, with Python's message
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    _check_text(len(text) + hits * max(growth, 0), "the text made by replace()")


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    budget: _Budget | None = getattr(_local, "budget", None)
    if budget is not None:
        budget.range_left -= len(numbers)
        if budget.range_left < 0:
            raise _limit("the numbers all range() calls yield", MAX_RANGE_ITEMS, "numbers")
    _check_items(len(numbers), "range()")
    return numbers


def _finalize(value: Any) -> Any:
    # Every {{ }} passes through here before it becomes text: measure what str() would make.
    if type(value) is not str:
        _check_printable(value, "a value")
    return value


def _bound_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with its arguments checked first (widths, and the size of printed values)."""
    shallow = name in _SHALLOW_FILTERS

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        if name == "join" and len(args) >= 2:
            # join(eval_ctx, value, ...): a generator is listed so it can be counted (and it
            # is joined from that list).
            args = (args[0], _listed(args[1]), *args[2:])
        for arg in (*args, *kwargs.values()):
            if not shallow and isinstance(arg, list | tuple | dict):
                _check_printable(arg, f"the value given to filter {name!r}")
        _check_filter_args(name, args, kwargs)
        return BoundedSandbox.built(func(*args, **kwargs))

    return bounded


def _check_filter_args(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    # Context arguments Jinja passes first (environment, eval context) are not str.
    values = [arg for arg in args if not hasattr(arg, "autoescape")]
    text = values[0] if values else None
    if name == "center":
        width = values[1] if len(values) > 1 else kwargs.get("width", 80)
        if isinstance(width, int):
            _check_text(width, "the width given to center")
    elif name == "indent" and isinstance(text, str):
        width = values[1] if len(values) > 1 else kwargs.get("width", 4)
        step = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        _check_text(len(text) + (text.count("\n") + 1) * step, "the text made by indent")
    elif name == "wordwrap" and isinstance(text, str):
        wrap = values[3] if len(values) > 3 else kwargs.get("wrapstring")
        if isinstance(wrap, str):
            _check_text(len(text) * (1 + len(wrap)), "the text made by wordwrap")
    elif name == "format" and isinstance(text, str):
        _check_percent(text, kwargs or tuple(values[1:]))
    elif name == "replace" and len(values) >= 3:
        count = values[3] if len(values) > 3 else kwargs.get("count", -1)
        _check_replace(values[0], values[1], values[2], -1 if count is None else count)
    elif name == "tojson":
        indent = values[1] if len(values) > 1 else kwargs.get("indent")
        if isinstance(indent, int) and indent > _MAX_JSON_INDENT:
            raise _limit("the indent given to tojson", _MAX_JSON_INDENT, "spaces")
    elif name == "join" and isinstance(text, list | tuple):
        sep = values[1] if len(values) > 1 else kwargs.get("d", "")
        if isinstance(sep, str):
            _check_text(len(sep) * len(text) + _measure(text, MAX_TEXT_CHARS), "the joined text")
    elif name in ("batch", "slice"):
        # Both pad with ``fill_with`` (or make empty slices) up to the count they are given.
        count = values[1] if len(values) > 1 else kwargs.get("linecount", kwargs.get("slices"))
        if isinstance(count, int):
            _check_items(count, f"the count given to {name}")


class _BoundedFormatter(SandboxedFormatter):
    """``str.format`` as the sandbox runs it, refusing huge widths and printed values."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        spec = _FORMAT_SPEC.match(format_spec)
        if spec is not None:
            _width(spec["width"], "a format")
            _width(spec["precision"], "a format")
        _check_printable(value, "a formatted value")
        return super().format_field(value, format_spec)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        # {!r} and {!s} make the text before format_field sees the value.
        _check_printable(value, "a formatted value")
        return super().convert_field(value, conversion)


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator with ``~`` and list, tuple and object literals routed through
    the sandbox (they have no hook of their own, unlike the arithmetic operators)."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat_checked((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self.write("environment.built(")
        super().visit_List(node, frame)
        self.write(")")

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self.write("environment.built(")
        super().visit_Dict(node, frame)
        self.write(")")

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":  # an assignment target: (a, b) in a for loop or a set
            super().visit_Tuple(node, frame)
            return
        self.write("environment.built(")
        super().visit_Tuple(node, frame)
        self.write(")")


class BoundedTemplate(Template):
    """A template whose ``render`` keeps to the sandbox's limits in the calling thread."""

    may_run_long: bool = True
    """Whether the template loops, defines macros or calls costly filters: such a template is
    rendered off the event loop under ``TIME_LIMIT_S``. Set from the parsed source."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        variables = dict(*args, **kwargs)
        if not self.may_run_long:
            return self._render_capped(variables)
        try:
            return call_with_deadline(
                self._render_capped, variables, limit_s=TIME_LIMIT_S, traced=_is_template
            )
        except ComputeTimedOut:
            raise TemplateLimitExceeded(
                f"rendering ran past its time limit of {TIME_LIMIT_S:g} s"
            ) from None

    def _render_capped(self, variables: dict[str, Any]) -> str:
        previous = getattr(_local, "budget", None)
        _local.budget = _Budget()
        chunks: list[str] = []
        size = 0
        try:
            for chunk in self.root_render_func(self.new_context(variables)):
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise _limit("the output", MAX_OUTPUT_CHARS, "characters")
                chunks.append(chunk)
        except TemplateLimitExceeded:
            raise
        except RecursionError:
            raise TemplateLimitExceeded("rendering recursed too deeply") from None
        except Exception:
            self.environment.handle_exception()
        finally:
            _local.budget = previous
        return "".join(chunks)


def _is_template(code: Any) -> bool:
    return bool(code.co_filename == "<template>")


class BoundedSandbox(SandboxedEnvironment):
    """The sandbox with the limits of this module; see the module docstring."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _BoundedCodeGenerator
    template_class = BoundedTemplate

    def __init__(self) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=_finalize,
        )
        self.globals["range"] = _bounded_range
        # Lorem ipsum of any length, built in a Python loop the time limit does not watch.
        del self.globals["lipsum"]
        self.filters = {name: _bound_filter(name, f) for name, f in self.filters.items()}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _binop(operator, left, right)
        return self.built(super().call_binop(context, operator, left, right))

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        args = _checked_call(obj, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        if getattr(obj, "__name__", "") in _GROWING_METHODS:
            self.built(getattr(obj, "__self__", None))  # the list or object it grew in place
        return self.built(result)

    @staticmethod
    def built(value: T) -> T:
        """``value``, a list, tuple or object the template just made, if it prints within
        MAX_TEXT_CHARS: lists that share items (``[a, a]`` nested thirty times) are refused
        when made, before printing or comparing them could run for minutes."""
        if isinstance(value, list | tuple | dict):
            _check_printable(value, "a list or object the template built")
        return value

    def concat_checked(self, parts: Iterable[Any]) -> str:
        """``a ~ b ~ ...``: refused before joining if the text would pass MAX_TEXT_CHARS."""
        parts = tuple(parts)
        _check_text(sum(_measure(part, MAX_TEXT_CHARS) for part in parts), "the text made with ~")
        return "".join(map(str, parts))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` and ``format_map`` of any text, with widths and values checked."""
        if super().wrap_str_format(value) is None:
            return None
        owner: str = value.__self__
        formatter = _BoundedFormatter(self)
        if value.__name__ == "format_map":

            def bounded(*args: Any, **kwargs: Any) -> str:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                return str(formatter.vformat(owner, (), args[0]))

        else:

            def bounded(*args: Any, **kwargs: Any) -> str:
                return str(formatter.vformat(owner, args, kwargs))

        return functools.update_wrapper(bounded, value)

    def from_string(
        self,
        source: str | nodes.Template,
        globals: MutableMapping[str, Any] | None = None,
        template_class: type[Template] | None = None,
    ) -> Template:
        tree = self.parse(source) if isinstance(source, str) else source
        template = super().from_string(tree, globals, template_class)
        if isinstance(template, BoundedTemplate):
            template.may_run_long = _may_run_long(tree)
        return template


def _may_run_long(tree: nodes.Template) -> bool:
    """Whether the template can take time out of proportion to its size and its inputs."""
    if any(True for _ in tree.find_all((nodes.For, nodes.Macro, nodes.CallBlock))):
        return True
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name == "range":
            return True
    return any(f.name in _LONG_FILTERS for f in tree.find_all(nodes.Filter))


@functools.cache
def sandbox() -> BoundedSandbox:
    """The one bounded environment every template renders in.

    Sandboxed (no private or dunder attributes, no unsafe calls), bounded (this module's
    limits), StrictUndefined (a missing variable is an error naming it, never an empty string),
    and without autoescaping (the output is text, not HTML). Built on first use.
    """
    return BoundedSandbox()


async def render(template: Template, variables: Mapping[str, Any]) -> str:
    """``template`` rendered over ``variables``: in place when it is quick by construction,
    in the compute pool when it may run long (it then stops itself after TIME_LIMIT_S)."""
    if isinstance(template, BoundedTemplate) and not template.may_run_long:
        return template.render(variables)
    return await run_off_loop(template.render, variables)
