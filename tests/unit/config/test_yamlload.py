"""The bounded, strict scaleout.yaml loader: every refusal is one ConfigError naming file and line,
found before anything expands; and every pattern check is a full match (no trailing newline slips by)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scaleout.config.load import load_config, parse_config
from scaleout.config.yamlload import MAX_BYTES, load_yaml
from scaleout.errors import ConfigError
from scaleout.files import read_capped
from tests.helpers import TESTS

P = Path("/tmp/scaleout-config-yaml-tests/proj")  # never created: no .env is read from it


def parse(text: str):
    return parse_config(text, P, env={}, dotenv={})


def problem(text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        parse(text)
    return str(exc.value)


# --- structure -------------------------------------------------------------------------------------

def test_an_alias_is_refused_at_its_anchor_with_line_and_key():
    msg = problem("name: x\nbackend:\n  env:\n    A: &a hello\n    B: *a\n")
    assert msg == "scaleout.yaml:4: backend.env.A: YAML anchors (&a) are not allowed; write the value out"


def test_an_alias_without_anchor_is_refused_too():
    msg = problem("backend:\n  env: *nothing\n")
    assert msg == "scaleout.yaml:2: backend.env: YAML aliases (*nothing) are not allowed; write the value out"


def test_billion_laughs_is_refused_before_expanding():
    rows = ["backend:", "  env:", "    L0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    rows += [f"    L{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    msg = problem("\n".join(rows) + "\n")
    assert msg.startswith("scaleout.yaml:3: backend.env.L0: YAML anchors (&l0)")


def test_duplicate_keys_name_both_lines():
    msg = problem("balancer:\n  bind: 127.0.0.1\n  port: 8080\n  bind: 0.0.0.0\n")
    assert msg == ("scaleout.yaml:4: balancer.bind: duplicate key (first set on line 2); remove one of them")


def test_duplicate_keys_in_a_flow_mapping_and_at_top_level():
    assert "duplicate key" in problem("balancer: {bind: 127.0.0.1, bind: 0.0.0.0}\n")
    msg = problem("name: a\nbackend: {}\nname: b\n")
    assert msg.startswith("scaleout.yaml:3: name: duplicate key (first set on line 1)")


def test_every_duplicate_is_reported():
    with pytest.raises(ConfigError) as exc:
        parse("name: a\nname: b\nbackend:\n  port: 1\n  port: 2\n")
    assert len(exc.value.problems) == 2


@pytest.mark.parametrize("depth, ok", [(30, True), (33, False), (20_000, False)])
def test_nesting_is_bounded(depth, ok):
    text = "backend:\n  env:\n    A: " + "[" * depth + "]" * depth + "\n"
    if ok:  # deep but legal YAML: refused by validation (a list is not an env value), not by the loader
        assert "backend.env" in problem(text)
    else:
        msg = problem(text)
        assert msg.startswith("scaleout.yaml:3:") and ("nested deeper than 32" in msg or "nesting depth" in msg)


def test_unclosed_deep_nesting_is_refused():
    assert problem("[" * 20_000).startswith("scaleout.yaml:1:")


@pytest.mark.parametrize("number", ["9" * 19, "9" * 5000, "0x" + "f" * 20_000, "-" + "1" * 25,
                                    "1_000_000_000_000_000_000"])
def test_huge_integers_are_refused(number):
    msg = problem(f"backend:\n  port: {number}\n")
    assert msg.startswith("scaleout.yaml:2: backend.port:")
    assert "digits" in msg or "characters long" in msg


def test_an_integer_of_18_digits_is_read_and_then_validated():
    assert "backend.replicas" in problem("backend:\n  replicas: 999999999999999999\n")


def test_python_int_conversion_limit_is_a_config_error():
    # an explicit !!int on 5,000 digits would hit Python's int/str conversion limit
    assert "scaleout.yaml:1: name:" in problem("name: !!int " + "7" * 5000)


@pytest.mark.parametrize("text, fragment", [
    ("name: !!python/object:os.system x", "!!python/object:os.system is not allowed"),
    ("name: !!binary aGVsbG8=", "!!binary is not allowed"),
    ("backend: !!set {a, b}", "!!set is not allowed"),
    ("backend:\n  <<: {port: 1}", "merge keys (<<) are not allowed"),
    ("name: a\n---\nname: b\n", "only one YAML document"),
    ("? [a, b]\n: c\n", "a key must be a plain value"),
    ("name: [unclosed\n", "not valid YAML"),
    ("name: !!int", "'' is not a valid int"),  # PyYAML's constructor would raise IndexError
    ("name: !!float ''", "'' is not a valid float"),
    ("name: !!bool maybe", "'maybe' is not a valid bool"),
])
def test_yaml_features_scaleout_does_not_take(text, fragment):
    msg = problem(text)
    assert fragment in msg and msg.startswith("scaleout.yaml:")


def test_sexagesimal_and_dates_stay_strings():
    doc = load_yaml("a: 22:22\nb: 2024-01-01\nc: 1:30.5\nd: yes\n", display="x")
    assert doc.data == {"a": "22:22", "b": "2024-01-01", "c": "1:30.5", "d": True}
    # so a date is a fine env value (PyYAML's safe_load made it a datetime.date, refused as an env value)
    assert parse("backend:\n  env:\n    SINCE: 2024-01-01\n").backend.env["SINCE"].value == "2024-01-01"


def test_lines_of_keys_and_items():
    doc = load_yaml("a:\n  b: 1\n  c:\n    - x\n    - y: 2\n", display="x")
    assert doc.lines[("a", "b")] == 2 and doc.lines[("a", "c", "1")] == 5 and doc.lines[("a", "c", "1", "y")] == 5
    assert doc.line_of(("a", "c", "1", "nope")) == 5


def test_control_characters_and_nul_name_their_line():
    msg = problem("name: a\nbackend:\n  env: {A: \"x\0\"}\n\0")
    assert msg == "scaleout.yaml:3: not valid YAML: character #x0000 is not allowed"
    assert problem("name: a\x07b").startswith("scaleout.yaml:1:")


def test_the_text_size_is_capped():
    assert "larger than" in problem("#" * (MAX_BYTES + 1))


def test_too_many_values_are_refused():
    msg = problem("backend:\n  env: [" + ", ".join(["1"] * 100_001) + "]\n")
    assert msg == "scaleout.yaml:2: backend.env: at most 512 items are allowed"  # the list's own bound first
    with pytest.raises(ConfigError, match="more than 100000 values"):  # the loader's bound without one
        load_yaml("[" + ", ".join(["1"] * 100_001) + "]", display="x.yaml")


# --- trailing newlines and other full-match rules -----------------------------------------------------

@pytest.mark.parametrize("text, key", [
    ('name: "proj\\n"', "name"),
    ('balancer:\n  hash_key: "$cookie_session\\n"', "balancer.hash_key"),
    ('backend:\n  weights: {"backend-1\\n": 2}', "backend.weights"),
    ('backend:\n  backup: ["backend-2\\n"]', "backend.backup"),
    ('images:\n  balancer: "nginx:1.27\\n"', "images.balancer"),
    ('images:\n  base: "python:3.12\\n"', "images.base"),
    ('balancer:\n  client_max_body_size: "10m\\n"', "balancer.client_max_body_size"),
    ('backend:\n  dockerfile: "Dockerfile\\n"', "backend.dockerfile"),
    ('backend:\n  build: "backend\\n"', "backend.build"),
    ('static:\n  dir: "public\\n"', "static.dir"),
    ('static:\n  routes: ["/static/\\n"]', "static.routes"),
    ('backend:\n  health:\n    path: "/healthz\\n"', "backend.health.path"),
    ('backend:\n  env: {"KEY\\n": x}', "backend.env"),
    ('backend:\n  limits: {memory: "256m\\n"}', "backend.limits.memory"),
])
def test_a_trailing_newline_is_refused(text, key):
    msg = problem(text)
    assert f": {key}" in msg, msg


@pytest.mark.parametrize("size", ["'0'", "0k", "000m", "0"])
def test_client_max_body_size_zero_is_refused_with_a_hint(size):
    msg = problem(f"balancer:\n  client_max_body_size: {size}\n")
    assert "scaleout.yaml:2: balancer.client_max_body_size: 0 would turn the limit off" in msg
    assert "100m" in msg


def test_a_large_body_size_is_fine_and_a_bare_number_is_bytes():
    assert parse("balancer:\n  client_max_body_size: 4096m\n").balancer.client_max_body_size == "4096m"
    assert parse("balancer:\n  client_max_body_size: 512\n").balancer.client_max_body_size == "512"


# --- reading the file -----------------------------------------------------------------------------------

def test_a_symlink_to_dev_zero_is_refused_without_reading(tmp_path):
    (tmp_path / "scaleout.yaml").symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(tmp_path, env={})


def test_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "scaleout.yaml")
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(tmp_path, env={})


def test_a_folder_is_refused(tmp_path):
    (tmp_path / "scaleout.yaml").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path, env={})


def test_a_big_file_is_refused_by_its_size(tmp_path):
    (tmp_path / "scaleout.yaml").write_bytes(b"#" * (MAX_BYTES + 1))
    with pytest.raises(ConfigError, match="at most 1048576 bytes"):
        load_config(tmp_path, env={})


def test_read_capped_reads_at_most_the_limit(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x" * 100)
    assert read_capped(f, display="f", limit=100) == b"x" * 100
    with pytest.raises(ConfigError, match="at most 99 bytes"):
        read_capped(f, display="f", limit=99)


def test_invalid_utf8_names_its_line(tmp_path):
    (tmp_path / "scaleout.yaml").write_bytes(b"name: a\nbackend:\n  env: {A: \"\xc3\x28\"}\n")
    with pytest.raises(ConfigError, match=r"scaleout.yaml:3: cannot be read: not valid UTF-8"):
        load_config(tmp_path, env={})


def test_a_byte_order_mark_is_fine(tmp_path):
    (tmp_path / "scaleout.yaml").write_bytes(b"\xef\xbb\xbfname: bom\n")
    assert load_config(tmp_path, env={}).name == "bom"


# --- without libyaml ------------------------------------------------------------------------------------

CORPUS = TESTS / "fixtures" / "hostile-yaml"


@pytest.mark.parametrize("fixture", sorted(CORPUS.glob("*.yaml")), ids=lambda p: p.name)
def test_the_pure_python_parser_is_bounded_too(monkeypatch, fixture):
    """PyYAML without libyaml parses with its own (pure Python) scanner and parser: same bounds."""
    import yaml

    monkeypatch.setattr(yaml, "CSafeLoader", None)
    try:
        text = fixture.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return  # refused before parsing, whichever parser
    with pytest.raises(ConfigError) as exc:
        parse(text)
    assert all(p.startswith("scaleout.yaml") for p in exc.value.problems)


def test_the_pure_python_parser_reports_the_same_lines(monkeypatch):
    import yaml

    monkeypatch.setattr(yaml, "CSafeLoader", None)
    msg = problem("name: a\nbackend:\n  env:\n    A: &a x\n")
    assert msg.startswith("scaleout.yaml:4: backend.env.A: YAML anchors")
    assert problem("backend:\n  env:\n    A: " + "[" * 20_000).startswith("scaleout.yaml:3: backend.env.A.0.0")
    assert problem("a: 1\nb: \0").startswith("scaleout.yaml:2: not valid YAML: character #x0000")
    assert problem("balancer:\n  bind: a\n  bind: b").startswith("scaleout.yaml:3: balancer.bind: duplicate key")


# --- validation messages word for word (each pins a rule whose message or boundary could change unnoticed) ---

def test_decode_text_counts_lines_from_the_first_byte():
    from scaleout.config.yamlload import decode_text

    assert decode_text(b"\xef\xbb\xbfname: x\n", display="f") == "name: x\n"
    with pytest.raises(ConfigError) as err:
        decode_text(b"\nabc\n\xff", display="f")
    assert str(err.value) == "f:3: cannot be read: not valid UTF-8 (byte 5); save it as UTF-8"


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: !custom x", "f.yaml:1: a: YAML tag !custom is not allowed"),
        ("a: !!python/name:os.system x", "f.yaml:1: a: YAML tag !!python/name:os.system is not allowed"),
        ("a: 1\n---\nb: 2\n", "f.yaml:2: only one YAML document is allowed (remove the second '---')"),
        ("k" * 60 + ":\n  " + "j" * 57 + ":\n    - &x 1",
         "f.yaml:3: " + "k" * 60 + "." + "j" * 57 + ".0: YAML anchors (&x) are not allowed; write the value out"),
        ("k" * 60 + ":\n  " + "j" * 58 + ":\n    - &x 1",
         "f.yaml:3: " + "k" * 60 + "." + "j" * 56 + "...: YAML anchors (&x) are not allowed; write the value out"),
    ],
)
def test_yaml_refusals_name_the_key(text, message):
    from scaleout.config.yamlload import load_yaml

    with pytest.raises(ConfigError) as err:
        load_yaml(text, display="f.yaml")
    assert str(err.value) == message


@pytest.mark.parametrize(
    "text, data",
    [
        ("a: =", {"a": "="}),  # YAML 1.1's value key stays the text it is
        ("a: ! 12", {"a": 12}),  # the non-specific tag resolves as an untagged value
        ("a: 1." + "0" * 38, {"a": 1.0}),  # 40 characters: the longest number allowed
    ],
)
def test_yaml_scalars_near_a_rule(text, data):
    from scaleout.config.yamlload import load_yaml

    assert load_yaml(text, display="f.yaml").data == data


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: {<<: {b: 1}}", "f.yaml:1: a: merge keys (<<) are not allowed; write the keys out"),
        ("a: 1." + "0" * 39, "f.yaml:1: a: number is 41 characters long; at most 40 are allowed"),
        ("a: [" + "1," * 100_001 + "]", "f.yaml:1: more than 100000 values; this is not a scaleout.yaml"),
    ],
)
def test_more_yaml_refusals(text, message):
    from scaleout.config.yamlload import load_yaml

    with pytest.raises(ConfigError) as err:
        load_yaml(text, display="f.yaml")
    assert str(err.value) == message


@pytest.mark.parametrize(
    "number, value",
    [
        ("0b" + "1" * 18, 2**18 - 1),  # 18 binary digits: the prefix is not a digit
        ("0x" + "0" * 17 + "1", 1),  # leading zeros after the prefix do not count
        ("+" + "0" * 18 + "1", 1),  # nor a sign
        ("1" + "_0" * 9, 10**9),  # nor underscores
        ("1.0000000000000000000", 1.0),  # the digit rule is for integers only
    ],
)
def test_integer_digits_are_counted_as_digits(number, value):
    from scaleout.config.yamlload import load_yaml

    assert load_yaml(f"a: {number}", display="f.yaml").data == {"a": value}


def test_an_integer_with_too_many_digits_is_refused_even_when_small():
    from scaleout.config.yamlload import load_yaml

    with pytest.raises(ConfigError) as err:
        load_yaml("a: 0b" + "1" * 19, display="f.yaml")  # 19 digits, though only 524287
    assert str(err.value) == "f.yaml:1: a: integer has more than 18 digits"


def test_yaml_limits_at_their_boundary():
    from scaleout.config.yamlload import load_yaml

    assert load_yaml("a: " + "[" * 31 + "]" * 31, display="f.yaml").data["a"]  # 32 levels with the mapping
    items = load_yaml("a: [" + "1," * 99_996 + "1]", display="f.yaml").data["a"]  # 100000 values in all
    assert len(items) == 99_997


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: " + "[" * 32 + "]" * 32, "f.yaml:1: a" + ".0" * 31 + ": nested deeper than 32 levels"),
        ("? [a]\n: 1", "f.yaml:1: not valid YAML for scaleout: a key must be a plain value, not a list or mapping"),
        ("a: 1\nb: \x07", "f.yaml:2: not valid YAML: character #x0007 is not allowed"),
        ("a: [1", "f.yaml:2: not valid YAML: did not find expected ',' or ']'"),  # at the end of the text
        ("a:\n  b: 1\n   c: 2", "f.yaml:3: not valid YAML: mapping values are not allowed in this context"),
    ],
)
def test_yaml_parse_errors_name_the_line(text, message):
    from scaleout.config.yamlload import load_yaml

    with pytest.raises(ConfigError) as err:
        load_yaml(text, display="f.yaml")
    assert str(err.value) == message


def test_a_short_hexadecimal_integer_may_still_be_too_large():
    from scaleout.config.yamlload import load_yaml

    assert hex(10**18) == "0xde0b6b3a7640000"  # 15 digits, within the digit rule, but 10**18
    with pytest.raises(ConfigError) as err:
        load_yaml("a: 0xde0b6b3a7640000", display="f.yaml")
    assert str(err.value) == "f.yaml:1: a: integer has more than 18 digits"
    assert load_yaml("a: 0xde0b6b3a763ffff", display="f.yaml").data == {"a": 10**18 - 1}
