"""Make decorated functions visible to mutmut (used by scripts/mutation.sh, on its scratch copy only).

mutmut 3 never mutates a decorated function (apart from a lone @staticmethod/@classmethod): it would have
to copy the decorator. That leaves out every pydantic validator (@field_validator + @classmethod,
@model_validator), every @property and every @contextmanager, which is most of config validation. This
rewrites each such function into a thin decorated shell that returns a call to a plain module-level copy
of its body, `_lifted_<Class>_<name>`, with the same parameters: the decorators, the signature pydantic
inspects and the behaviour stay the same, and mutmut mutates the copy like any other function.

    python scripts/mutation_lift.py FILE ...      rewrites the files in place; prints how many it lifted
"""

from __future__ import annotations

import sys

import libcst as cst

_PLAIN = ("staticmethod", "classmethod")


def _liftable(fn: cst.FunctionDef) -> bool:
    if not fn.decorators or fn.asynchronous is not None:
        return False
    only = fn.decorators[0].decorator
    if len(fn.decorators) == 1 and isinstance(only, cst.Name) and only.value in _PLAIN:
        return False  # mutmut handles these itself
    code = cst.Module(body=[]).code_for_node(fn.body)
    # a zero-argument super() or a mangled __name only works inside the class body
    return "super()" not in code and ".__" not in code


def _call_args(params: cst.Parameters) -> list[cst.Arg]:
    args = [cst.Arg(cst.Name(p.name.value)) for p in (*params.posonly_params, *params.params)]
    if isinstance(params.star_arg, cst.Param):
        args.append(cst.Arg(cst.Name(params.star_arg.name.value), star="*"))
    args += [cst.Arg(cst.Name(p.name.value), keyword=cst.Name(p.name.value)) for p in params.kwonly_params]
    if params.star_kwarg is not None:
        args.append(cst.Arg(cst.Name(params.star_kwarg.name.value), star="**"))
    return args


def _lift(fn: cst.FunctionDef, owner: str | None) -> tuple[cst.FunctionDef, cst.FunctionDef]:
    """(the decorated shell, the plain copy)."""
    name = f"_lifted_{owner}_{fn.name.value}" if owner else f"_lifted_{fn.name.value}"
    # the shell always passes every argument: a default in the copy would only breed mutants nothing can see
    params = fn.params
    params = params.with_changes(
        params=[p.with_changes(default=None, equal=cst.MaybeSentinel.DEFAULT) for p in params.params],
        kwonly_params=[p.with_changes(default=None, equal=cst.MaybeSentinel.DEFAULT) for p in params.kwonly_params],
        posonly_params=[p.with_changes(default=None, equal=cst.MaybeSentinel.DEFAULT) for p in params.posonly_params],
    )
    plain = fn.with_changes(name=cst.Name(name), params=params, decorators=[], leading_lines=[cst.EmptyLine()] * 2)
    call = cst.Call(func=cst.Name(name), args=_call_args(fn.params))
    shell = fn.with_changes(body=cst.IndentedBlock(body=[cst.SimpleStatementLine(body=[cst.Return(value=call)])]))
    return shell, plain


def lift(source: str) -> tuple[str, int]:
    module = cst.parse_module(source)
    body: list[cst.BaseStatement] = []
    count = 0
    for stmt in module.body:
        lifted: list[cst.FunctionDef] = []
        if isinstance(stmt, cst.FunctionDef) and _liftable(stmt):
            stmt, plain = _lift(stmt, None)
            lifted.append(plain)
        elif isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock):
            members = []
            for member in stmt.body.body:
                if isinstance(member, cst.FunctionDef) and _liftable(member):
                    member, plain = _lift(member, stmt.name.value)
                    lifted.append(plain)
                members.append(member)
            stmt = stmt.with_changes(body=stmt.body.with_changes(body=members))
        body.append(stmt)
        body.extend(lifted)
        count += len(lifted)
    return module.with_changes(body=body).code, count


if __name__ == "__main__":
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            text, n = lift(f.read())
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"{path}: {n} decorated function(s) lifted for mutation", file=sys.stderr)
