"""A tiny interpreter for the Python subset that byte-table builders use, so they are audited statically.

It walks a function's AST with its own evaluator: assignments, loops, branches, comprehensions, string
methods, a whitelist of tokenizer queries, and numpy/torch array constructors modelled as plain lists.
Nothing of the audited script is handed to Python's own `exec`; any construct outside the subset raises
`Unsupported`, which the audit reports as UNKNOWN rather than guessing.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_STEPS = 3_000_000
# One operation must not run long or fill memory either (the step counter cannot interrupt it), so sizes
# are checked before the operation runs. A byte table has one entry per vocabulary piece.
MAX_ITEMS = 10_000_000  # characters, bytes or items one str, bytes, list, tuple or range may hold
MAX_TABLE = 1 << 21  # entries of one modelled array (each costs interpreted work)
MAX_INT_BITS = 4096
MAX_EXPONENT = 64
MAX_POW_BASE = 2**32
MAX_CALL_DEPTH = 64
# Creating or copying a sequence of n items costs n // _ITEMS_PER_STEP steps, so loops of copies stop too.
_ITEMS_PER_STEP = 16


class Unsupported(Exception):
    """The function uses something the interpreter does not model."""


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


@dataclass(frozen=True)
class DType:
    """A numpy or torch dtype, reduced to the kind of values it holds."""

    kind: str  # "int", "bool", "float"

    def cast(self, value: Any) -> Any:
        return {"int": int, "bool": bool, "float": float}[self.kind](value)


@dataclass(frozen=True)
class Module:
    """A module the interpreter models (numpy, torch, math)."""

    name: str


@dataclass(frozen=True)
class Device:
    """A torch device; only passed along."""

    name: str = "cpu"


class Array:
    """A one-dimensional numpy array or torch tensor, as a list of Python values."""

    def __init__(self, values: list[Any], dtype: DType) -> None:
        if len(values) > MAX_TABLE:
            raise Unsupported(f"an array of {len(values):,} entries (more than {MAX_TABLE:,})")
        self.dtype = dtype
        self.values = [dtype.cast(v) for v in values]

    def copy(self, dtype: DType | None = None) -> Array:
        return Array(list(self.values), dtype or self.dtype)

    def __len__(self) -> int:
        return len(self.values)


_DTYPES = {
    **dict.fromkeys(("int8", "int16", "int32", "int64", "uint8", "uint16", "long", "int", "short",
                     "intc", "int_"), DType("int")),
    **dict.fromkeys(("bool", "bool_"), DType("bool")),
    **dict.fromkeys(("float16", "float32", "float64", "float", "double", "half", "bfloat16"),
                    DType("float")),
}

# Queries a table builder may ask of a SentencePiece tokenizer, in both naming styles.
TOKENIZER_METHODS = {
    "vocab_size": "vocab_size", "get_piece_size": "vocab_size", "GetPieceSize": "vocab_size",
    "piece_size": "vocab_size",
    "is_control": "is_control", "IsControl": "is_control",
    "is_unknown": "is_unknown", "IsUnknown": "is_unknown",
    "is_unused": "is_unused", "IsUnused": "is_unused",
    "is_byte": "is_byte", "IsByte": "is_byte",
    "id_to_piece": "id_to_piece", "IdToPiece": "id_to_piece",
    "piece_to_id": "piece_to_id", "PieceToId": "piece_to_id",  # the `sp.piece_to_id("▁") != unk` guard
    "unk_id": "unk_id", "bos_id": "bos_id", "eos_id": "eos_id", "pad_id": "pad_id",
}

_STR_METHODS = frozenset({
    "startswith", "endswith", "encode", "decode", "replace", "lstrip", "rstrip", "strip",
    "removeprefix", "removesuffix", "lower", "upper", "isspace", "isalpha", "isdigit", "count",
    "find", "split", "join", "hex",
})

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Div: operator.truediv,
    ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.Pow: operator.pow,
}
_CMPOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b, ast.Is: operator.is_, ast.IsNot: operator.is_not,
}


class _Bound:
    """A method bound to a modelled value."""

    def __init__(self, owner: Any, name: str) -> None:
        self.owner, self.name = owner, name


class _UserFunction:
    """A function defined in the audited module, interpreted when called."""

    def __init__(self, node: ast.FunctionDef, interp: Interpreter) -> None:
        self.node, self.interp = node, interp


class Interpreter:
    """Interprets one module's functions over modelled values."""

    def __init__(self, tree: ast.Module, tokenizer_factory: Callable[[Any], Any] | None = None) -> None:
        self.steps = 0
        self.depth = 0
        self.globals: dict[str, Any] = {}
        self.tokenizer_factory = tokenizer_factory
        for stmt in tree.body:
            self._bind_module_level(stmt)

    # -- module level: imports, constants and functions only; nothing else is evaluated
    def _bind_module_level(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                self.globals[alias.asname or alias.name.split(".")[0]] = Module(alias.name)
        elif isinstance(stmt, ast.ImportFrom) and stmt.module:
            for alias in stmt.names:
                self.globals[alias.asname or alias.name] = Module(f"{stmt.module}.{alias.name}")
        elif isinstance(stmt, ast.FunctionDef):
            self.globals[stmt.name] = _UserFunction(stmt, self)
        elif (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
              and isinstance(stmt.targets[0], ast.Name) and isinstance(stmt.value, ast.Constant)):
            self.globals[stmt.targets[0].id] = stmt.value.value
        elif isinstance(stmt, ast.If | ast.Try):
            for inner in getattr(stmt, "body", []):
                self._bind_module_level(inner)

    def call_function(self, node: ast.FunctionDef, args: list[Any]) -> Any:
        """Interpret `node` with positional `args` and return its value."""
        params = node.args.posonlyargs + node.args.args
        if len(args) > len(params):
            raise Unsupported(f"{node.name} takes {len(params)} arguments")
        env: dict[str, Any] = {}
        defaults = node.args.defaults
        first_default = len(params) - len(defaults)
        for i, param in enumerate(params):
            if i < len(args):
                env[param.arg] = args[i]
            elif i >= first_default:
                env[param.arg] = self.eval(defaults[i - first_default], env)
            else:
                raise Unsupported(f"no value for parameter {param.arg!r} of {node.name}")
        for kw, default in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True):
            if default is None:
                raise Unsupported(f"keyword-only parameter {kw.arg!r} has no default")
            env[kw.arg] = self.eval(default, env)
        if self.depth >= MAX_CALL_DEPTH:
            raise Unsupported(f"calls nested more than {MAX_CALL_DEPTH} deep at {node.name}")
        self.depth += 1
        try:
            self.exec_block(node.body, env)
        except _Return as ret:
            return ret.value
        finally:
            self.depth -= 1
        return None

    # -- statements
    def exec_block(self, body: list[ast.stmt], env: dict[str, Any]) -> None:
        for stmt in body:
            self.exec_stmt(stmt, env)

    def _tick(self, steps: int = 1) -> None:
        self.steps += steps
        if self.steps > MAX_STEPS:
            raise Unsupported(f"more than {MAX_STEPS} interpreted steps")

    def _charge(self, value: Any) -> Any:
        """Count the work of building `value` (a long sequence costs steps in proportion) and return it."""
        if isinstance(value, Array):
            self._tick(len(value))
        elif not isinstance(value, range):  # a range is lazy; its loop pays per item
            self._tick(_size(value) // _ITEMS_PER_STEP)
        return value

    def exec_stmt(self, stmt: ast.stmt, env: dict[str, Any]) -> None:
        self._tick()
        if isinstance(stmt, ast.Assign):
            value = self.eval(stmt.value, env)
            for target in stmt.targets:
                self.assign(target, value, env)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is not None:
                self.assign(stmt.target, self.eval(stmt.value, env), env)
        elif isinstance(stmt, ast.AugAssign):
            current = self.eval(_as_load(stmt.target), env)
            self.assign(stmt.target, self._binop(stmt.op, current, self.eval(stmt.value, env)), env)
        elif isinstance(stmt, ast.For):
            self._for(stmt, env)
        elif isinstance(stmt, ast.While):
            while self.eval(stmt.test, env):
                self._tick()
                try:
                    self.exec_block(stmt.body, env)
                except _Break:
                    break
                except _Continue:
                    continue
        elif isinstance(stmt, ast.If):
            self.exec_block(stmt.body if self.eval(stmt.test, env) else stmt.orelse, env)
        elif isinstance(stmt, ast.Return):
            raise _Return(None if stmt.value is None else self.eval(stmt.value, env))
        elif isinstance(stmt, ast.Continue):
            raise _Continue
        elif isinstance(stmt, ast.Break):
            raise _Break
        elif isinstance(stmt, ast.Expr):
            self.eval(stmt.value, env)
        elif isinstance(stmt, ast.Pass | ast.Import | ast.ImportFrom):
            if not isinstance(stmt, ast.Pass):
                self._bind_local_import(stmt, env)
        elif isinstance(stmt, ast.FunctionDef):
            env[stmt.name] = _UserFunction(stmt, self)
        elif isinstance(stmt, ast.Assert):
            if not self.eval(stmt.test, env):
                raise Unsupported(f"assertion at line {stmt.lineno} fails")
        else:
            raise Unsupported(f"{type(stmt).__name__} statement at line {stmt.lineno}")

    def _bind_local_import(self, stmt: ast.Import | ast.ImportFrom, env: dict[str, Any]) -> None:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                env[alias.asname or alias.name.split(".")[0]] = Module(alias.name)
        elif stmt.module:
            for alias in stmt.names:
                env[alias.asname or alias.name] = Module(f"{stmt.module}.{alias.name}")

    def _for(self, stmt: ast.For, env: dict[str, Any]) -> None:
        for item in self._iterate(self.eval(stmt.iter, env)):
            self._tick()
            self.assign(stmt.target, item, env)
            try:
                self.exec_block(stmt.body, env)
            except _Break:
                return
            except _Continue:
                continue
        self.exec_block(stmt.orelse, env)

    def _iterate(self, value: Any) -> Any:
        if isinstance(value, Array):
            return list(value.values)
        if isinstance(value, range | list | tuple | str | dict | zip | enumerate):
            return value
        raise Unsupported(f"iteration over {type(value).__name__}")

    def assign(self, target: ast.expr, value: Any, env: dict[str, Any]) -> None:
        """Bind `value` to an assignment target."""
        if isinstance(target, ast.Name):
            env[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            items = list(self._iterate(value))
            if len(items) != len(target.elts):
                raise Unsupported(f"unpacking {len(items)} values into {len(target.elts)} at line "
                                  f"{target.lineno}")
            for elt, item in zip(target.elts, items, strict=True):
                self.assign(elt, item, env)
        elif isinstance(target, ast.Subscript):
            container = self.eval(target.value, env)
            key = self.eval(target.slice, env)
            self._setitem(container, key, value, target.lineno)
        else:
            raise Unsupported(f"assignment to {type(target).__name__} at line {target.lineno}")

    def _setitem(self, container: Any, key: Any, value: Any, line: int) -> None:
        if isinstance(container, Array):
            values = value.values if isinstance(value, Array) else value
            if isinstance(key, slice):
                indices = range(len(container))[key]
                seq = values if isinstance(values, list) else [values] * len(indices)
                for i, v in zip(indices, seq, strict=True):
                    container.values[i] = container.dtype.cast(v)
            elif isinstance(key, int):
                container.values[key] = container.dtype.cast(values)
            else:
                raise Unsupported(f"array index of type {type(key).__name__} at line {line}")
        elif isinstance(container, list | dict):
            if isinstance(key, slice) and _size(value) > MAX_ITEMS:
                raise Unsupported(f"slice assignment of {_size(value):,} items at line {line}")
            try:
                container[key] = value
            except (IndexError, TypeError, ValueError) as err:
                raise Unsupported(f"item assignment at line {line}: {err}") from None
        else:
            raise Unsupported(f"item assignment on {type(container).__name__} at line {line}")

    # -- expressions
    def eval(self, node: ast.expr, env: dict[str, Any]) -> Any:  # noqa: C901 - one dispatch table
        """Value of expression `node` in `env`."""
        self._tick()
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self._lookup(node, env)
        if isinstance(node, ast.Attribute):
            return self._attribute(self.eval(node.value, env), node.attr, node.lineno)
        if isinstance(node, ast.Call):
            return self._call(node, env)
        if isinstance(node, ast.BinOp):
            return self._binop(node.op, self.eval(node.left, env), self.eval(node.right, env))
        if isinstance(node, ast.UnaryOp):
            operand = self.eval(node.operand, env)
            if isinstance(node.op, ast.Not):
                return not operand
            if isinstance(node.op, ast.USub | ast.UAdd) and isinstance(operand, int | float):
                _check_int(operand)
                return -operand if isinstance(node.op, ast.USub) else +operand
            raise Unsupported(f"unary operator at line {node.lineno}")
        if isinstance(node, ast.BoolOp):
            result: Any = None
            for value in node.values:
                result = self.eval(value, env)
                if isinstance(node.op, ast.And) and not result:
                    return result
                if isinstance(node.op, ast.Or) and result:
                    return result
            return result
        if isinstance(node, ast.Compare):
            left = self.eval(node.left, env)
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = self.eval(comparator, env)
                try:
                    if not _CMPOPS[type(op)](left, right):
                        return False
                except TypeError as err:
                    raise Unsupported(f"comparison at line {node.lineno}: {err}") from None
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return self.eval(node.body if self.eval(node.test, env) else node.orelse, env)
        if isinstance(node, ast.Subscript):
            return self._getitem(self.eval(node.value, env), self.eval(node.slice, env), node.lineno)
        if isinstance(node, ast.Slice):
            parts = [None if p is None else self.eval(p, env) for p in (node.lower, node.upper, node.step)]
            return slice(*parts)
        if isinstance(node, ast.Tuple):
            return tuple(self.eval(e, env) for e in node.elts)
        if isinstance(node, ast.List):
            return [self.eval(e, env) for e in node.elts]
        if isinstance(node, ast.Dict):
            return {self.eval(k, env): self.eval(v, env) for k, v in zip(node.keys, node.values, strict=True)
                    if k is not None}
        if isinstance(node, ast.ListComp | ast.GeneratorExp):
            return self._comprehension(node, env)
        if isinstance(node, ast.JoinedStr):
            parts = [self.eval(v.value, env) if isinstance(v, ast.FormattedValue) else v.value
                     for v in node.values]
            _check_builtin_args(str, parts, node.lineno)
            return self._charge(_checked("".join(str(p) for p in parts)))
        raise Unsupported(f"{type(node).__name__} expression at line {getattr(node, 'lineno', '?')}")

    def _lookup(self, node: ast.Name, env: dict[str, Any]) -> Any:
        if node.id in env:
            return env[node.id]
        if node.id in self.globals:
            return self.globals[node.id]
        if node.id in _BUILTINS:
            return _BUILTINS[node.id]
        raise Unsupported(f"name {node.id!r} at line {node.lineno} is not modelled")

    def _comprehension(self, node: ast.ListComp | ast.GeneratorExp, env: dict[str, Any]) -> list[Any]:
        out: list[Any] = []

        def walk(level: int, scope: dict[str, Any]) -> None:
            if level == len(node.generators):
                out.append(self.eval(node.elt, scope))
                return
            gen = node.generators[level]
            for item in self._iterate(self.eval(gen.iter, scope)):
                self._tick()
                inner = dict(scope)
                self.assign(gen.target, item, inner)
                if all(self.eval(cond, inner) for cond in gen.ifs):
                    walk(level + 1, inner)

        walk(0, dict(env))
        return out

    def _binop(self, op: ast.operator, left: Any, right: Any) -> Any:
        if type(op) not in _BINOPS:
            raise Unsupported(f"operator {type(op).__name__}")
        if isinstance(left, Array) or isinstance(right, Array):
            return self._charge(_array_binop(type(op), left, right))
        if isinstance(left, _PLAIN) and isinstance(right, _PLAIN):
            return self._charge(_arith(type(op), left, right))
        raise Unsupported(f"operator {type(op).__name__} on {type(left).__name__}")

    def _getitem(self, container: Any, key: Any, line: int) -> Any:
        if isinstance(container, Array):
            if isinstance(key, slice):
                return Array(container.values[key], container.dtype)
            if isinstance(key, int):
                return container.values[key]
            raise Unsupported(f"array index of type {type(key).__name__} at line {line}")
        if isinstance(container, list | tuple | str | bytes | dict):
            try:
                return container[key]
            except (IndexError, KeyError, TypeError) as err:
                raise Unsupported(f"index error at line {line}: {err}") from None
        raise Unsupported(f"indexing {type(container).__name__} at line {line}")

    def _attribute(self, owner: Any, name: str, line: int) -> Any:
        if isinstance(owner, Module):
            root = owner.name.split(".")[0]
            if root in {"numpy", "torch"} and name in _DTYPES:
                return _DTYPES[name]
            if root in {"numpy", "torch", "math", "sentencepiece"}:
                return _Bound(owner, name)
            raise Unsupported(f"module {owner.name!r} at line {line} is not modelled")
        if isinstance(owner, Array) and name == "shape":
            return (len(owner),)
        if isinstance(owner, Array) and name == "dtype":
            return owner.dtype
        return _Bound(owner, name)

    def _call(self, node: ast.Call, env: dict[str, Any]) -> Any:
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise Unsupported(f"star-arguments at line {node.lineno}")
        func = self.eval(node.func, env)
        args = [self.eval(a, env) for a in node.args]
        kwargs = {k.arg: self.eval(k.value, env) for k in node.keywords if k.arg is not None}
        if isinstance(func, _UserFunction):
            if kwargs:
                raise Unsupported(f"keyword arguments to {func.node.name} at line {node.lineno}")
            return func.interp.call_function(func.node, args)
        if isinstance(func, _Bound):
            return self._call_bound(func, args, kwargs, node.lineno)
        if callable(func) and func in _BUILTINS.values():
            _check_builtin_args(func, [*args, *kwargs.values()], node.lineno)
            try:
                return self._charge(_checked(func(*args, **kwargs)))
            except (ArithmeticError, TypeError, ValueError) as err:
                raise Unsupported(f"call at line {node.lineno}: {err}") from None
        if isinstance(func, Module) and func.name.endswith("SentencePieceProcessor") and self.tokenizer_factory:
            return self.tokenizer_factory(kwargs.get("model_file", args[0] if args else None))
        raise Unsupported(f"call to {ast.unparse(node.func)} at line {node.lineno} is not modelled")

    def _call_bound(self, bound: _Bound, args: list[Any], kwargs: dict[str, Any], line: int) -> Any:
        owner, name = bound.owner, bound.name
        if isinstance(owner, Module):
            return self._charge(_module_call(owner.name.split(".")[0], name, args, kwargs, line))
        if hasattr(owner, "audit_query") and name in TOKENIZER_METHODS:
            return owner.audit_query(TOKENIZER_METHODS[name], *args)
        if isinstance(owner, str | bytes) and name in _STR_METHODS:
            _check_str_method(owner, name, args, line)
            try:
                return self._charge(_checked(getattr(owner, name)(*args, **kwargs)))
            except (TypeError, ValueError, UnicodeError) as err:
                raise Unsupported(f"{name} at line {line}: {err}") from None
        if isinstance(owner, list) and name == "append":
            owner.append(args[0])
            return None
        if isinstance(owner, dict) and name in {"get", "items", "keys", "values"}:
            return getattr(owner, name)(*args)
        if isinstance(owner, Array):
            return self._charge(_array_method(owner, name, args, kwargs, line))
        if isinstance(owner, DType | Device):
            raise Unsupported(f"method {name} at line {line}")
        raise Unsupported(f"method {type(owner).__name__}.{name} at line {line} is not modelled")


def _as_load(target: ast.expr) -> ast.expr:
    copy = ast.parse(ast.unparse(target), mode="eval").body
    return ast.copy_location(copy, target)


def _dtype_of(kwargs: dict[str, Any], args: list[Any], position: int, default: DType) -> DType:
    value = kwargs.get("dtype", args[position] if len(args) > position else None)
    if value is None:
        return default
    if isinstance(value, DType):
        return value
    if value in (bool, int, float):
        return DType(value.__name__)
    if isinstance(value, str) and value in _DTYPES:
        return _DTYPES[value]
    raise Unsupported(f"dtype {value!r}")


def _length(shape: Any) -> int:
    if isinstance(shape, tuple | list):
        if len(shape) != 1:
            raise Unsupported("tables with more than one dimension")
        shape = shape[0]
    if not isinstance(shape, int):
        raise Unsupported(f"table size of type {type(shape).__name__}")
    if not 0 <= shape <= MAX_TABLE:
        raise Unsupported(f"a table of {shape:,} entries")
    return shape


def _values_of(data: Any) -> list[Any]:
    if isinstance(data, Array):
        return list(data.values)
    if isinstance(data, list | tuple):
        return list(data)
    raise Unsupported(f"array from {type(data).__name__}")


def _infer_dtype(values: list[Any]) -> DType:
    if values and all(isinstance(v, bool) for v in values):
        return DType("bool")
    if any(isinstance(v, float) for v in values):
        return DType("float")
    return DType("int")


def _module_call(module: str, name: str, args: list[Any], kwargs: dict[str, Any], line: int) -> Any:
    if module == "math" and name in {"ceil", "floor"}:
        import math

        return getattr(math, name)(*args)
    if module not in {"numpy", "torch"}:
        raise Unsupported(f"{module}.{name} at line {line} is not modelled")
    if name in {"zeros", "ones", "empty", "full"}:
        size = _length(args[0] if args else kwargs.get("size", kwargs.get("shape")))
        fill = {"zeros": 0, "empty": 0, "ones": 1}.get(name)
        if name == "full":
            fill = args[1] if len(args) > 1 else kwargs["fill_value"]
        default = DType("float") if fill is not None and not isinstance(fill, bool) else DType("bool")
        return Array([fill] * size, _dtype_of(kwargs, args, 2 if name == "full" else 1, default))
    if name in {"zeros_like", "ones_like", "full_like", "empty_like"}:
        base: Array = args[0]
        fill = args[1] if name == "full_like" else (1 if name == "ones_like" else 0)
        return Array([fill] * len(base), _dtype_of(kwargs, [], 9, base.dtype))
    if name in {"array", "asarray", "tensor", "as_tensor", "from_numpy"}:
        values = _values_of(args[0])
        default = args[0].dtype if isinstance(args[0], Array) else _infer_dtype(values)
        return Array(values, _dtype_of(kwargs, args, 1 if module == "numpy" else 9, default))
    if name == "device":
        return Device(str(args[0]) if args else "cpu")
    if name == "arange":
        if not all(isinstance(a, int) for a in args) or _size(range(*args)) > MAX_TABLE:
            raise Unsupported(f"{module}.arange{tuple(args)} at line {line}")
        return Array(list(range(*args)), _dtype_of(kwargs, [], 9, DType("int")))
    raise Unsupported(f"{module}.{name} at line {line} is not modelled")


def _array_method(arr: Array, name: str, args: list[Any], kwargs: dict[str, Any], line: int) -> Any:
    if name in {"to", "astype", "type"}:
        target = kwargs.get("dtype", args[0] if args else None)
        return arr.copy(target) if isinstance(target, DType) else arr.copy()
    if name in {"cpu", "numpy", "clone", "copy", "contiguous", "cuda", "detach"}:
        return arr.copy()
    if name in {"bool", "long", "int", "float", "short"}:
        return arr.copy(_DTYPES[name])
    if name == "tolist":
        return list(arr.values)
    if name == "sum":
        return sum(arr.values)
    if name in {"fill_", "fill"}:
        arr.values = [arr.dtype.cast(args[0])] * len(arr)
        return arr
    raise Unsupported(f"array method {name} at line {line} is not modelled")


def _array_binop(op: type, left: Any, right: Any) -> Array:
    for operand in (left, right):
        if not isinstance(operand, Array | int | float):
            raise Unsupported(f"array arithmetic with a {type(operand).__name__}")
    lv = left.values if isinstance(left, Array) else None
    rv = right.values if isinstance(right, Array) else None
    size = len(lv) if lv is not None else len(rv)  # type: ignore[arg-type]
    lv = lv if lv is not None else [left] * size
    rv = rv if rv is not None else [right] * size
    if len(lv) != len(rv):
        raise Unsupported("arrays of different sizes")
    values = [_arith(op, a, b) for a, b in zip(lv, rv, strict=True)]
    return Array(values, _infer_dtype(values))


_PLAIN = (list, str, bytes, tuple, int, float, bool)
_SEQUENCES = (list, str, bytes, tuple)


def _size(value: Any) -> int:
    """How many items a value holds (a range's length without materializing it), else 0."""
    if isinstance(value, range):
        return max(0, (value.stop - value.start + value.step - (1 if value.step > 0 else -1)) // value.step)
    if isinstance(value, str | bytes | list | tuple | dict | Array):
        return len(value)
    return 0


def _check_int(value: Any) -> None:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise Unsupported(f"an integer of more than {MAX_INT_BITS} bits")


def _checked(value: Any) -> Any:
    """`value`, unless it is larger than the interpreter lets one value be."""
    _check_int(value)
    if _size(value) > MAX_ITEMS:
        raise Unsupported(f"a value of {_size(value):,} items (more than {MAX_ITEMS:,})")
    return value


def _check_operands(op: type, left: Any, right: Any) -> None:
    """Refuse, before it runs, an operation whose result would be huge or slow to compute."""
    _check_int(left)
    _check_int(right)
    numbers = isinstance(left, int | float) and isinstance(right, int | float)
    if op is ast.Pow and numbers and (abs(right) > MAX_EXPONENT or abs(left) > MAX_POW_BASE):
        raise Unsupported(f"power {left!r} ** {right!r} (exponent over {MAX_EXPONENT} or base over 2**32)")
    if op is ast.Mult:
        if numbers and isinstance(left, int) and isinstance(right, int) \
                and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise Unsupported(f"a product of more than {MAX_INT_BITS} bits")
        seq, times = (left, right) if isinstance(left, _SEQUENCES) else (right, left)
        if isinstance(seq, _SEQUENCES) and isinstance(times, int) and len(seq) * max(times, 0) > MAX_ITEMS:
            raise Unsupported(f"repeating a sequence of {len(seq):,} items {times:,} times")
    if op is ast.Add and isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES) \
            and len(left) + len(right) > MAX_ITEMS:
        raise Unsupported(f"a concatenation of more than {MAX_ITEMS:,} items")
    if op is ast.Mod and isinstance(left, str | bytes):
        raise Unsupported("%-formatting (a width can make any string)")


def _arith(op: type, left: Any, right: Any) -> Any:
    """`left op right` on plain values, refused when it would be huge, slow or an error."""
    _check_operands(op, left, right)
    try:
        return _checked(_BINOPS[op](left, right))
    except (ArithmeticError, TypeError, ValueError) as err:
        raise Unsupported(f"operator {op.__name__}: {err}") from None


def _check_builtin_args(func: Any, args: list[Any], line: int) -> None:
    """Builtins run in C without steps: refuse arguments that would make them long or huge."""
    for arg in args:
        _check_int(arg)
        if _size(arg) > MAX_ITEMS:
            raise Unsupported(f"a call at line {line} over {_size(arg):,} items")
    if func in (bytes, str) and args and isinstance(args[0], int) and args[0] > MAX_ITEMS:
        raise Unsupported(f"bytes({args[0]:,}) at line {line}")


def _check_str_method(owner: str | bytes, name: str, args: list[Any], line: int) -> None:
    """Refuse string methods whose result would be huge (replace and join can multiply sizes)."""
    if name == "replace" and len(args) >= 2 and isinstance(args[1], str | bytes):
        bound = (len(owner) + 1) * max(len(args[1]), 1) + len(owner)
        if bound > MAX_ITEMS:
            raise Unsupported(f"replace at line {line} could make {bound:,} characters")
    if name == "join" and args:
        items = args[0]
        if _size(items) > MAX_ITEMS:
            raise Unsupported(f"join of {_size(items):,} items at line {line}")
        if isinstance(items, list | tuple):
            total = sum(_size(i) for i in items) + len(owner) * len(items)
            if total > MAX_ITEMS:
                raise Unsupported(f"join at line {line} would make {total:,} characters")


def _max(*args: Any, **kwargs: Any) -> Any:
    return max(*args, **kwargs)


_BUILTINS: dict[str, Any] = {
    "len": len, "range": range, "int": int, "bool": bool, "str": str, "float": float,
    "max": _max, "min": min, "enumerate": enumerate, "list": list, "tuple": tuple, "zip": zip,
    "sum": sum, "any": any, "all": all, "abs": abs, "isinstance": isinstance, "dict": dict,
    "chr": chr, "ord": ord, "bytes": bytes,
}
