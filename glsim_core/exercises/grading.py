"""The machinery behind every ``check_<name>``: hidden cases, friendly verdicts, a result object, a registry.

A check is a list of :class:`Case` objects run against the student's function (or a namespace of functions). Each
case calls the student's code through :func:`call`, compares with the check's own reference through :func:`compare`
(or raises :class:`Mismatch` itself), and never lets a traceback reach the student:

* a stub that raises ``NotImplementedError`` gives a "not implemented yet" verdict (with the cases that already
  pass, when only part of a namespace is written);
* any other exception in the student's code becomes a failed case that names the exception, the case, and the line
  of the student's code it came from;
* a wrong answer becomes a failed case with the expected and the received values *summarised* (shape, dtype,
  range, largest difference), never the reference code, and a hint (a pointer to the paper or the notebook, or a
  targeted hint when the answer matches a known mistake).

:func:`run_check` prints the verdict and returns a :class:`CheckResult`; the latest result of each exercise is kept
in a per-process registry (:func:`summary`), which the exercise notebooks record in ``OUT_DIR/results.json`` so CI
can assert that every solution passes and every untouched stub reports "not implemented".
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import linecache
import math
import traceback
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["STUB_MESSAGE", "Case", "CaseResult", "CheckResult", "Mismatch", "NotImplementedYet", "StudentError",
           "ReferenceCalled", "core_functions", "references_blocked", "call", "compare", "compare_exact",
           "describe", "get_part", "run_check", "summary", "results", "reset", "scoreboard"]

#: The message of the ``raise NotImplementedError(...)`` stub the generator writes into student notebooks.
STUB_MESSAGE = "your code here"

_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])


# ---------------------------------------------------------------------------------------------------- exceptions
class Mismatch(Exception):
    """A case's answer is wrong: what was expected, what was received (both summarised) and a hint."""

    def __init__(self, expected: str, got: str, hint: str = "", detail: str = ""):
        super().__init__(detail or "mismatch")
        self.expected, self.got, self.hint, self.detail = expected, got, hint, detail


class NotImplementedYet(Exception):
    """The student's code raised ``NotImplementedError`` (the stub)."""

    def __init__(self, func: str, message: str):
        super().__init__(message)
        self.func, self.message = func, message


class StudentError(Exception):
    """The student's code raised an exception (other than ``NotImplementedError``)."""

    def __init__(self, func: str, exc: BaseException, where: str):
        super().__init__(f"{type(exc).__name__}: {exc}")
        self.func, self.exc, self.where = func, exc, where


# ---------------------------------------------------------------------------------------------------- references
class ReferenceCalled(Exception):
    """Raised by a core reference implementation while a check blocks it (see :func:`references_blocked`)."""

    def __init__(self, name: str):
        super().__init__(f"{name} is the reference implementation; it is unavailable while the check runs")
        self.name = name


_CALLED: list[str] = []  # blocked references called during the current student call (even if the error was caught)
_BLOCKED: dict[str, Callable] = {}  # the references the running check blocks


def _reference_called(name: str) -> None:
    """What a blocked reference runs instead of its own code."""
    _CALLED.append(name)
    raise ReferenceCalled(name)


@functools.cache
def _stub_code(name: str, freevars: tuple[str, ...]) -> types.CodeType:
    """A code object that calls :func:`_reference_called` (found through ``__import__``: the code runs with the
    blocked function's globals) and has the same free variables as the function it replaces."""
    body = [f"        ({', '.join(freevars)},)"] if freevars else []
    lines = ["def _factory():", *[f"    {v} = None" for v in freevars], "    def _blocked(*args, **kwargs):", *body,
             f"        __import__({__name__!r}, fromlist=['_'])._reference_called({name!r})",
             "    return _blocked"]
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), namespace)  # noqa: S102 - builds a stub from constant text
    return namespace["_factory"]().__code__


def _function_of(obj: Any) -> types.FunctionType | None:
    """The Python function whose code runs when ``obj`` is called (through decorators, methods, properties)."""
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if isinstance(obj, property):
        obj = obj.fget
    obj = inspect.unwrap(obj) if callable(obj) else obj
    if isinstance(obj, types.MethodType):
        obj = obj.__func__
    return obj if isinstance(obj, types.FunctionType) else None


def core_functions(*modules: str, only: Iterable[str] = (), skip: Iterable[str] = ()) -> dict[str, Callable]:
    """``{qualified name: function}`` of every function and method defined in the ``glsim_core`` modules
    ``modules`` (e.g. ``"glsim_core.selection.gls"``); ``only`` keeps the names listed (``"select_boxes"``,
    ``"FAlpha.forward"``), ``skip`` drops some."""
    only, skip = set(only), set(skip)
    out: dict[str, Callable] = {}
    for name in modules:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            items = [(attr, value)]
            if isinstance(value, type) and value.__module__ == module.__name__:
                items = [(f"{attr}.{k}", v) for k, v in vars(value).items()]
            for qual, obj in items:
                fn = _function_of(obj)
                if fn is None or fn.__module__ != module.__name__ or qual in skip or (only and qual not in only):
                    continue
                out[f"{module.__name__}.{qual}"] = fn
    return out


@contextlib.contextmanager
def references_blocked(references: Mapping[str, Callable]) -> Iterator[list[str]]:
    """While inside, every function of ``references`` (``{name: function}``) raises :class:`ReferenceCalled`
    instead of running, wherever the student's code reaches it from (the function's code is swapped, so names
    imported before the check are blocked too); the yielded list collects the names called. Everything is restored
    on exit, also after an exception."""
    saved: list[tuple[types.FunctionType, types.CodeType]] = []
    _CALLED.clear()
    try:
        for name, obj in references.items():
            fn = _function_of(obj)
            if fn is None or any(fn is f for f, _ in saved):
                continue
            stub = _stub_code(name, fn.__code__.co_freevars)
            saved.append((fn, fn.__code__))
            fn.__code__ = stub
        yield _CALLED
    finally:
        for fn, code in reversed(saved):
            fn.__code__ = code


def _delegation(name: str, called: Sequence[str]) -> Mismatch:
    ref = called[0]
    return Mismatch("your own implementation", f"`{name}` calls `{ref}`, the reference implementation",
                    f"Your function calls the reference implementation `{ref}`; write it yourself (this check makes "
                    f"the reference unavailable while it runs).")


# ---------------------------------------------------------------------------------------------------- results
@dataclass
class CaseResult:
    """One hidden case: ``status`` is "passed", "failed", "error" (the student's code raised) or
    "not_implemented" (it raised ``NotImplementedError``: the stub is still there)."""

    name: str
    status: str
    expected: str = ""
    got: str = ""
    hint: str = ""
    error: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class CheckResult:
    """The outcome of one ``check_<name>`` call.

    ``status``: "passed" (every case passed), "failed" (some case failed or raised), or "not_implemented" (no
    case failed, but the student's code still raises ``NotImplementedError`` in some; ``message`` holds its
    message).
    """

    exercise: str
    title: str
    status: str
    cases: list[CaseResult] = field(default_factory=list)
    message: str = ""
    verdict: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def n_passed(self) -> int:
        return sum(c.passed for c in self.cases)

    @property
    def failed_cases(self) -> list[CaseResult]:
        return [c for c in self.cases if c.status in ("failed", "error")]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("verdict")
        d["passed"] = self.passed
        return d

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"<CheckResult {self.exercise}: {self.status}, {self.n_passed}/{len(self.cases)} cases passed>"


@dataclass
class Case:
    """A hidden case: ``run(student)`` raises :class:`Mismatch` (or lets a student error through) when it fails."""

    name: str
    run: Callable[[Any], None]


_LATEST: dict[str, CheckResult] = {}


def results() -> dict[str, CheckResult]:
    """The latest :class:`CheckResult` of every exercise checked in this process."""
    return dict(_LATEST)


def summary() -> dict[str, dict[str, Any]]:
    """``{exercise: CheckResult.to_dict()}`` for every exercise checked in this process (JSON-ready)."""
    return {name: r.to_dict() for name, r in _LATEST.items()}


def reset() -> None:
    """Forget the recorded results."""
    _LATEST.clear()


def scoreboard(expected: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Print one line per exercise (the ``expected`` ones first, "not checked yet" when missing) and return
    :func:`summary` — what a notebook records at its end."""
    names = list(dict.fromkeys([*expected, *_LATEST]))
    for name in names:
        r = _LATEST.get(name)
        if r is None:
            print(f"   {name:20s} not checked yet")
        else:
            print(f"{_ICONS[r.status]} {name:20s} {r.status.replace('_', ' ')} ({r.n_passed}/{len(r.cases)} cases)")
    return summary()


# ---------------------------------------------------------------------------------------------------- calling
def _func_name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _student_frame(tb) -> str:
    """'line N of <file>: `code`' for the innermost frame of the student's own code (not torch, not glsim_core)."""
    frames = traceback.extract_tb(tb)
    for fr in reversed(frames):
        fname = fr.filename or ""
        if fname.startswith(_PACKAGE_DIR) or "site-packages" in fname or "/lib/python" in fname:
            continue
        code = (fr.line or linecache.getline(fname, fr.lineno) or "").strip()
        where = "your cell" if ("ipykernel" in fname or fname.startswith("<")) else Path(fname).name
        return f"line {fr.lineno} of {where}" + (f": `{code}`" if code else "")
    return ""


def _snapshot(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (list, tuple)):
        return [_snapshot(v) for v in value]
    return None


def _changed(before: Any, after: Any) -> bool:
    import torch

    if isinstance(after, torch.Tensor) and isinstance(before, torch.Tensor):
        return before.shape != after.shape or not torch.equal(before, after.detach())
    if isinstance(after, (list, tuple)) and isinstance(before, list):
        return len(before) != len(after) or any(_changed(b, a) for b, a in zip(before, after))
    return False


def call(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call the student's ``fn``; turn ``NotImplementedError`` into :class:`NotImplementedYet` and any other
    exception into :class:`StudentError` (with the line of the student's code it came from). A tensor argument
    modified in place, or a call to a reference the running check blocks (:func:`run_check`'s ``blocked``), is
    reported as a :class:`Mismatch`."""
    name = _func_name(fn)
    before = [_snapshot(a) for a in args]
    with references_blocked(_BLOCKED) as called:
        try:
            out = fn(*args, **kwargs)
        except NotImplementedError as exc:
            if called:
                raise _delegation(name, called) from None
            raise NotImplementedYet(name, str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - everything the student's code raises becomes a verdict
            if called or isinstance(exc, ReferenceCalled):
                raise _delegation(name, called or [exc.name]) from None
            raise StudentError(name, exc, _student_frame(exc.__traceback__)) from None
        if called:
            raise _delegation(name, called)
    for i, (b, a) in enumerate(zip(before, args)):
        if b is not None and _changed(b, a):
            raise Mismatch("your function to leave its inputs unchanged",
                           f"argument {i + 1} of `{name}` was modified in place",
                           "Use out-of-place operations (x.pow(2), x - m), not in-place ones (x.pow_(2), x -= m): "
                           "the caller still needs its tensors.")
    return out


def get_part(obj: Any, name: str) -> Callable:
    """``obj[name]`` (a dict, e.g. ``globals()``) or ``obj.name`` (a module or namespace); a friendly failure when
    it is missing or not callable."""
    if isinstance(obj, Mapping):
        part = obj.get(name)
    else:
        part = getattr(obj, name, None)
    if part is None:
        raise Mismatch(f"a function called `{name}`", "nothing of that name",
                       f"Define `{name}` and pass it in, e.g. check(dict({name}={name}, ...)).")
    if not callable(part):
        raise Mismatch(f"`{name}` to be a function", f"a {type(part).__name__}",
                       f"Pass the function itself, without calling it: `{name}`, not `{name}(...)`.")
    return part


# ---------------------------------------------------------------------------------------------------- summaries
def _fmt(v: float) -> str:
    if v != v:
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.4g}"


def describe(value: Any) -> str:
    """A short summary of a value: a tensor's shape, dtype and range (never its full contents)."""
    import numpy as np
    import torch

    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if isinstance(value, torch.Tensor):
        t = value.detach()
        head = f"tensor of shape {tuple(t.shape)}, {str(t.dtype).replace('torch.', '')}"
        if t.numel() == 0:
            return head + ", empty"
        if t.dtype == torch.bool:
            return head + f", {int(t.sum())} True"
        tf = t.double().cpu()
        bad = int((~torch.isfinite(tf)).sum())
        finite = tf[torch.isfinite(tf)]
        parts = [head]
        if bad:
            parts.append(f"{bad} non-finite value{'s' if bad > 1 else ''} (nan/inf)")
        if finite.numel():
            if t.numel() <= 4:
                parts.append("values " + str([_fmt(float(v)) for v in tf.flatten()]).replace("'", ""))
            else:
                parts.append(f"values in [{_fmt(float(finite.min()))}, {_fmt(float(finite.max()))}]")
        return ", ".join(parts)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return _fmt(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} item{'s' if len(value) != 1 else ''}"
    return f"a {type(value).__name__}"


def _as_tensor(value: Any, what: str, expected: Any, hint_none: str = ""):
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach()
    if value is None:
        raise Mismatch(describe(expected), "None",
                       hint_none or "Your function returned nothing: did you forget `return`?")
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    try:
        return torch.as_tensor(value)
    except Exception:  # noqa: BLE001
        raise Mismatch(describe(expected), describe(value), f"The {what} should be a torch tensor.") from None


def compare(got: Any, expected, *, what: str = "output", rtol: float = 1e-5, atol: float = 1e-7,
            hint: str = "", mistakes: Mapping[str, tuple[Any, str]] | None = None,
            allow_shapes: Iterable[tuple[int, ...]] = ()) -> None:
    """Raise :class:`Mismatch` unless the tensor ``got`` equals ``expected`` within tolerances.

    ``mistakes`` maps a label to ``(wrong_output, hint)``: when ``got`` matches a known mistake, its hint replaces
    the generic one. ``allow_shapes``: other shapes accepted when they hold the same values (e.g. (B, 1, d) for (B, d)).
    """
    import torch

    exp = expected.detach()
    g = _as_tensor(got, what, exp)
    if tuple(g.shape) != tuple(exp.shape):
        if tuple(g.shape) in {tuple(s) for s in allow_shapes} and g.numel() == exp.numel():
            g = g.reshape(exp.shape)
        else:
            raise Mismatch(f"{what}: {describe(exp)}", f"{what}: {describe(g)}",
                           hint or f"Check the shape of the {what}: which dimensions should it keep?")
    if g.is_complex() or g.dtype == torch.bool:
        raise Mismatch(f"{what}: {describe(exp)}", f"{what}: {describe(g)}", f"The {what} should be real numbers.")
    gd, ed = g.double().cpu(), exp.double().cpu()
    if torch.allclose(gd, ed, rtol=rtol, atol=atol, equal_nan=False):
        return
    for label, (wrong, mistake_hint) in (mistakes or {}).items():
        w = wrong.detach().double().cpu()
        if w.shape == gd.shape and torch.allclose(gd, w, rtol=rtol, atol=atol):
            raise Mismatch(f"{what}: {describe(exp)}", f"{what}: {describe(g)} — it matches {label}", mistake_hint)
    diff = (gd - ed).abs()
    diff = torch.where(torch.isfinite(diff), diff, torch.full_like(diff, math.inf))
    idx = tuple(int(i) for i in torch.unravel_index(torch.argmax(diff), diff.shape)) if diff.ndim else ()
    where = f" at index {idx}" if idx else ""
    detail = (f"largest difference {_fmt(float(diff.max()))}{where} (expected {_fmt(float(ed[idx]))}, "
              f"got {_fmt(float(gd[idx]))}); {int((~torch.isclose(gd, ed, rtol=rtol, atol=atol)).sum())} of "
              f"{gd.numel()} values differ")
    if not torch.isfinite(gd).all():
        hint = hint or "Your output has nan/inf values: which operation can produce them on these inputs?"
    raise Mismatch(f"{what}: {describe(exp)}", f"{what}: {describe(g)}; {detail}", hint, detail)


def compare_exact(got: Any, expected: Any, *, what: str = "output", hint: str = "",
                  mistakes: Mapping[str, tuple[Any, str]] | None = None, show: Callable[[Any], str] = describe) -> None:
    """Raise :class:`Mismatch` unless ``got == expected`` (numbers, or integer tensors compared element-wise)."""
    import torch

    if isinstance(expected, torch.Tensor):
        g = _as_tensor(got, what, expected)
        if g.is_floating_point() and not expected.is_floating_point():
            raise Mismatch(f"{what}: {describe(expected)}", f"{what}: {describe(g)}",
                           f"The {what} should hold integers (use an integer dtype such as torch.int64).")
        same = tuple(g.shape) == tuple(expected.shape) and bool(torch.equal(g.cpu().long(), expected.cpu().long()))
        if same:
            return
        for label, (wrong, mistake_hint) in (mistakes or {}).items():
            if tuple(g.shape) == tuple(wrong.shape) and torch.equal(g.cpu().long(), wrong.cpu().long()):
                raise Mismatch(f"{what}: {show(expected)}", f"{what}: {show(g)} — it matches {label}", mistake_hint)
        raise Mismatch(f"{what}: {show(expected)}", f"{what}: {show(g)}", hint)
    if got is None:
        raise Mismatch(show(expected), "None", "Your function returned nothing: did you forget `return`?")
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, float) and got.is_integer():
        got = int(got)
    if got == expected:
        return
    for label, (wrong, mistake_hint) in (mistakes or {}).items():
        if got == wrong:
            raise Mismatch(f"{what}: {show(expected)}", f"{what}: {show(got)} — it matches {label}", mistake_hint)
    raise Mismatch(f"{what}: {show(expected)}", f"{what}: {show(got)}", hint)


# ---------------------------------------------------------------------------------------------------- running
_ICONS = {"passed": "✅", "failed": "❌", "not_implemented": "⏳"}
_MAX_DETAILED = 3


def _format(result: CheckResult, student: str) -> str:
    n = len(result.cases)
    title = f"{result.exercise} ({result.title})"
    if result.status == "not_implemented":
        raised = f"{student} raised NotImplementedError({result.message!r})"
        if result.n_passed == 0:
            return (f"{_ICONS['not_implemented']} {title}: not implemented yet — {raised}.\n"
                    f"   Replace the `raise NotImplementedError` line with your code, run that cell, then run this "
                    f"check again.")
        lines = [f"{_ICONS['not_implemented']} {title}: {result.n_passed} of {n} hidden cases pass so far; not "
                 f"implemented yet: {raised}."]
    elif result.status == "passed":
        return f"{_ICONS['passed']} {title}: all {n} hidden cases passed. Well done!"
    else:
        lines = [f"{_ICONS['failed']} {title}: {result.n_passed} of {n} hidden cases passed."]
    detailed = 0
    for i, c in enumerate(result.cases, start=1):
        mark = {"passed": "✓", "failed": "✗", "error": "✗", "not_implemented": "⏳", "skipped": "·"}[c.status]
        note = {"skipped": " (not run)", "not_implemented": " (not implemented yet)"}.get(c.status, "")
        lines.append(f"   {mark} case {i}: {c.name}{note}")
        if c.status in ("failed", "error") and detailed < _MAX_DETAILED:
            detailed += 1
            if c.status == "error":
                lines.append(f"       your code raised {c.error}")
            else:
                lines.append(f"       expected: {c.expected}")
                lines.append(f"       got:      {c.got}")
            if c.hint:
                lines.append(f"       hint:     {c.hint}")
    if detailed < len(result.failed_cases):
        lines.append(f"   (details shown for the first {_MAX_DETAILED} failing cases; fix those first)")
    return "\n".join(lines)


def run_check(exercise: str, title: str, student: Any, cases: Sequence[Case], *, expects: str = "function",
              blocked: Mapping[str, Callable] | None = None, quiet: bool = False) -> CheckResult:
    """Run ``cases`` against ``student``, print the verdict (unless ``quiet``), record and return the result.

    ``expects`` describes what the check wants ("function" or "namespace") for the message when it gets something
    else. ``blocked`` (``{name: function}``, e.g. from :func:`core_functions`): the references the student must not
    call; each call of the student's code runs with them raising (:func:`references_blocked`), and a call is a
    failed case whose hint says so.
    """
    _BLOCKED.clear()
    _BLOCKED.update(blocked or {})
    try:
        return _run_cases(exercise, title, student, cases, expects, quiet)
    finally:
        _BLOCKED.clear()


def _run_cases(exercise: str, title: str, student: Any, cases: Sequence[Case], expects: str,
               quiet: bool) -> CheckResult:
    student_name = _func_name(student) if callable(student) else type(student).__name__
    result = CheckResult(exercise=exercise, title=title, status="passed")
    if expects == "function" and not callable(student):
        result.status = "failed"
        result.cases = [CaseResult("what was passed to the check", "failed", "your function", describe(student),
                                   "Pass the function itself, without calling it: check_x(my_function), "
                                   "not check_x(my_function(...)).")]
    else:
        raised: dict[str, str] = {}  # functions that raised NotImplementedError -> their message
        for case in cases:
            try:
                case.run(student)
            except NotImplementedYet as exc:
                raised.setdefault(exc.func, exc.message)
                result.cases.append(CaseResult(case.name, "not_implemented", error=f"`{exc.func}` raised "
                                               f"NotImplementedError({exc.message!r})"))
            except StudentError as exc:
                where = f"\n       at {exc.where}" if exc.where else ""
                result.cases.append(CaseResult(case.name, "error", error=f"{type(exc.exc).__name__}: "
                                               f"{_short(str(exc.exc))} (in `{exc.func}`){where}",
                                               hint=_error_hint(exc.exc)))
            except Mismatch as exc:
                result.cases.append(CaseResult(case.name, "failed", exc.expected, exc.got, exc.hint))
            except Exception as exc:  # noqa: BLE001 - e.g. an unexpected return type; never a traceback
                result.cases.append(CaseResult(case.name, "failed", "an answer the check can read",
                                               f"something it could not read ({type(exc).__name__}: "
                                               f"{_short(str(exc))})",
                                               "Check the type and shape of what your function returns."))
            else:
                result.cases.append(CaseResult(case.name, "passed"))
        statuses = {c.status for c in result.cases}
        if statuses & {"failed", "error"}:
            result.status = "failed"
        elif "not_implemented" in statuses:
            result.status = "not_implemented"
            result.message = next(iter(raised.values()))
            student_name = ", ".join(f"`{name}`" for name in raised)
        if raised and result.status == "failed":
            result.message = next(iter(raised.values()))
    result.verdict = _format(result, student_name)
    _LATEST[exercise] = result
    if not quiet:
        print(result.verdict)
    return result


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_hint(exc: BaseException) -> str:
    msg = str(exc)
    if isinstance(exc, RuntimeError) and any(k in msg for k in ("size", "shape", "mat1 and mat2", "dimension")):
        return "A shape mismatch: print the shapes of your intermediate tensors for this case."
    if isinstance(exc, (IndexError,)):
        return "An index went out of range: check which dimension you index and its size in this case."
    if isinstance(exc, (TypeError, AttributeError)):
        return "Check the types of the arguments your function receives (the docstring lists them)."
    return ""
