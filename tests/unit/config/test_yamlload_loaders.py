"""scaleout.yaml is read by libyaml when PyYAML has it, else by PyYAML's pure-Python loader: the same
file must get the same answer from both (the same data, or an error at the same file:line), hostile
files included. libyaml counts a bad character's position in bytes, PyYAML in characters."""

from __future__ import annotations

import pytest
import yaml

from scaleout.config.yamlload import decode_text, load_yaml
from scaleout.errors import ConfigError
from tests.helpers import TESTS

CORPUS = TESTS / "fixtures" / "hostile-yaml"


def _outcome(text: str) -> tuple[str, object]:
    try:
        return "data", load_yaml(text, display="scaleout.yaml").data
    except ConfigError as exc:
        return "error", str(exc).split(": not valid YAML")[0].split(": ")[0]


def _both(text: str, monkeypatch) -> tuple[tuple[str, object], tuple[str, object]]:
    assert getattr(yaml, "CSafeLoader", None) is not None, "these tests compare libyaml with the pure loader"
    with_c = _outcome(text)
    monkeypatch.delattr(yaml, "CSafeLoader")
    pure = _outcome(text)
    monkeypatch.undo()
    return with_c, pure


def _texts():
    for f in sorted(CORPUS.glob("*.yaml")):
        try:
            yield f.name, decode_text(f.read_bytes(), display=f.name)
        except ConfigError:
            continue  # not text at all: refused before any loader sees it (tests/unit/config/test_hostile.py)


@pytest.mark.parametrize("name, text", list(_texts()), ids=[n for n, _ in _texts()])
def test_both_loaders_agree_on_the_hostile_corpus(name, text, monkeypatch):
    with_c, pure = _both(text, monkeypatch)
    assert with_c == pure, name


@pytest.mark.parametrize("text, line", [
    ("name: \u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\nport: 80\nbad: \x07\n", 3),  # multi-byte text before it
    ("\x07name: x\n", 1),
    ("a: \u4e2d\u6587\u4e2d\u6587\u4e2d\u6587\u4e2d\u6587\u4e2d\u6587\u4e2d\u6587\u4e2d\u6587\u4e2d\u6587\nb: c\n"
     "c: d\n\x01\n", 4),
])
def test_a_bad_character_is_reported_on_its_line_by_both_loaders(text, line, monkeypatch):
    for drop_c in (False, True):
        if drop_c:
            monkeypatch.delattr(yaml, "CSafeLoader")
        with pytest.raises(ConfigError) as err:
            load_yaml(text, display="scaleout.yaml")
        assert str(err.value).startswith(f"scaleout.yaml:{line}: not valid YAML: character #x"), str(err.value)
        monkeypatch.undo()


def test_a_syntax_error_names_its_line_with_the_pure_loader(monkeypatch):
    monkeypatch.delattr(yaml, "CSafeLoader")
    with pytest.raises(ConfigError) as err:
        load_yaml("name: demo\nbackend:\n  port: [1, 2\n", display="scaleout.yaml")
    assert str(err.value).startswith("scaleout.yaml:") and ": not valid YAML: " in str(err.value)
    assert str(err.value).split(":")[1] in {"3", "4"}  # the flow sequence opened on line 3 is never closed


class _Failing:
    """A loader that fails at once with the given error: the error paths libyaml rarely takes."""

    error: Exception

    def __init__(self, text):
        pass

    def check_event(self):
        raise self.error

    def dispose(self):
        pass


def _fails_with(error: Exception, monkeypatch) -> str:
    loader = type("Loader", (_Failing,), {"error": error})
    monkeypatch.setattr(yaml, "CSafeLoader", loader)
    with pytest.raises(ConfigError) as err:
        load_yaml("name: x\n", display="scaleout.yaml")
    return str(err.value)


def test_what_a_parse_error_says_when_the_parser_gives_little(monkeypatch):
    from yaml.error import Mark, MarkedYAMLError
    from yaml.reader import ReaderError

    mark = Mark("scaleout.yaml", 0, 6, 3, None, None)
    assert _fails_with(MarkedYAMLError(problem="bad thing", problem_mark=mark), monkeypatch) == \
        "scaleout.yaml:7: not valid YAML: bad thing"
    assert _fails_with(MarkedYAMLError(context="in a mapping", context_mark=mark), monkeypatch) == \
        "scaleout.yaml:7: not valid YAML: in a mapping"
    assert _fails_with(MarkedYAMLError(), monkeypatch) == "scaleout.yaml: not valid YAML: cannot be parsed"
    assert _fails_with(ReaderError("scaleout.yaml", 3, "\x85", "unicode", "special characters"), monkeypatch) == \
        "scaleout.yaml:1: not valid YAML: character '\\x85' is not allowed"
    assert _fails_with(yaml.YAMLError("first line\nsecond line"), monkeypatch) == \
        "scaleout.yaml: not valid YAML: first line"
    assert _fails_with(yaml.YAMLError(), monkeypatch) == "scaleout.yaml: not valid YAML: cannot be parsed"


def test_the_size_bound_is_inclusive():
    from scaleout.config.yamlload import MAX_BYTES

    line = "# " + "x" * 97 + "\n"  # 100 characters
    text = "name: demo\n" + line * ((MAX_BYTES - 11) // 100)
    text += "#" * (MAX_BYTES - len(text) - 1) + "\n"
    assert len(text) == MAX_BYTES
    assert load_yaml(text, display="scaleout.yaml").data == {"name": "demo"}
    with pytest.raises(ConfigError, match=rf"^scaleout.yaml: is larger than {MAX_BYTES} bytes$"):
        load_yaml(text + "\n", display="scaleout.yaml")
