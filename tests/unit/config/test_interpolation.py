"""Compose-style interpolation and the .env file, case by case against Compose's documented rules
(docs.docker.com: compose-file/interpolation, environment-variables/env-file), and the secrets rule:
the Compose text keeps references, so no value from .env needs to be written anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scaleout.config.interpolated import Interpolated, values
from scaleout.config.interpolation import Budget, DotenvError, InterpolationError, interpolate, parse_dotenv
from scaleout.config.load import parse_config
from scaleout.config.model import Overrides
from scaleout.errors import ConfigError, UsageError

ENV = {"SET": "value", "EMPTY": "", "DOLLAR": "$OTHER", "PORT": "9000"}
P = Path("/tmp/scaleout-interpolation-tests/proj")


def resolve(text: str, env: dict | None = None):
    env = ENV if env is None else env
    return interpolate(text, env.get)


# --- the forms Compose documents ------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("${SET}", "value"),
    ("$SET", "value"),
    ("x${SET}y", "xvaluey"),
    ("$SET/path", "value/path"),
    ("$SET-suffix", "value-suffix"),
    ("$SETX", ""),  # the longest name: SETX, which is unset
    # default value: if set and non-empty / if set
    ("${SET:-d}", "value"), ("${EMPTY:-d}", "d"), ("${UNSET:-d}", "d"),
    ("${SET-d}", "value"), ("${EMPTY-d}", ""), ("${UNSET-d}", "d"),
    ("${UNSET:-}", ""), ("${UNSET:-a default with spaces}", "a default with spaces"),
    # required: value when set (and non-empty for :?)
    ("${SET:?needed}", "value"), ("${SET?needed}", "value"), ("${EMPTY?needed}", ""),
    # $$ is a literal dollar, and stops interpolation
    ("$$", "$"), ("$$SET", "$SET"), ("$${SET}", "${SET}"), ("$$$SET", "$value"),
    # a $ that starts no reference is kept, as Compose v2 documents
    ("cost $5", "cost $5"), ("a $ b", "a $ b"), ("end$", "end$"), ("$-x", "$-x"),
    # a value is never interpolated again
    ("${DOLLAR}", "$OTHER"),
])
def test_documented_forms(text, value):
    assert resolve(text).value == value


def test_unset_without_default_is_empty_and_reported():
    r = resolve("a${UNSET}b$ALSO_UNSET")
    assert r.value == "ab" and r.unset == ("UNSET", "ALSO_UNSET")
    assert resolve("${UNSET:-d}").unset == () and resolve("${UNSET-d}").unset == ()


@pytest.mark.parametrize("text, fragment", [
    ("${UNSET:?set it please}", "required variable UNSET is not set: set it please"),
    ("${EMPTY:?must not be empty}", "required variable EMPTY is empty: must not be empty"),
    ("${UNSET?needed}", "required variable UNSET is not set: needed"),
    ("${UNSET:?}", "required variable UNSET is not set"),
])
def test_required_variables(text, fragment):
    with pytest.raises(InterpolationError, match=fragment.replace("?", r"\?")):
        resolve(text)


@pytest.mark.parametrize("text, fragment", [
    ("${", "never closed"),
    ("${SET", "never closed"),
    ("${}", "not a variable reference"),
    ("${1A}", "not a variable reference"),
    ("${SET:+alt}", "not supported"),
    ("${SET+alt}", "not supported"),
    ("${SET/foo/bar}", "only ${VAR}"),
    ("${SET:-${OTHER}}", "nested references are not supported"),
    ("${SET:-$OTHER}", "nested references are not supported"),
])
def test_invalid_references(text, fragment):
    with pytest.raises(InterpolationError, match=fragment.replace("$", r"\$").replace("{", r"\{")):
        resolve(text)


@pytest.mark.parametrize("text, compose", [
    ("${SET}", "${SET}"),
    ("$SET", "$SET"),
    ("${UNSET:-d}", "${UNSET:-d}"),
    ("${SET:?needed}", "${SET:?needed}"),
    ("$$", "$$"),
    ("$$SET", "$$SET"),
    ("cost $5", "cost $$5"),
    ("end$", "end$$"),
    ("plain", "plain"),
])
def test_compose_text_keeps_references_and_doubles_literal_dollars(text, compose):
    assert resolve(text).compose == compose


templates = st.lists(st.sampled_from(["$", "$$", "{", "}", "SET", "EMPTY", "UNSET", ":-", "-", ":?", "?", "x", " ",
                                      "${SET}", "${UNSET:-d}", "$DOLLAR", "5"]), max_size=12).map("".join)


@given(templates)
def test_the_compose_text_resolves_to_the_same_value(text):
    try:
        r = resolve(text)
    except InterpolationError:
        return
    again = resolve(r.compose)
    assert again.value == r.value and again.compose == r.compose


def test_the_budget_stops_expansion():
    big = {"BIG": "x" * 100_000}
    with pytest.raises(InterpolationError, match="longer than"):
        interpolate("${BIG}${BIG}${BIG}", big.get)
    budget = Budget(left=250_000)
    interpolate("${BIG}", big.get, budget)
    interpolate("${BIG}", big.get, budget)
    with pytest.raises(InterpolationError, match="in total"):
        interpolate("${BIG}", big.get, budget)


# --- .env, as Compose documents it --------------------------------------------------------------------

def dotenv(text: str, environ: dict | None = None) -> dict[str, str]:
    entries, _ = parse_dotenv(text, display=".env", environ=environ or {})
    return {k: e.value for k, e in entries.items()}


@pytest.mark.parametrize("line, value", [
    ("VAR=VAL", "VAL"),
    ('VAR="VAL"', "VAL"),
    ("VAR='VAL'", "VAL"),
    ("VAR=VAL # comment", "VAL"),
    ("VAR=VAL# not a comment", "VAL# not a comment"),
    ('VAR="VAL # not a comment"', "VAL # not a comment"),
    ('VAR="VAL" # comment', "VAL"),
    ("VAR='$OTHER'", "$OTHER"),
    ("VAR='${OTHER}'", "${OTHER}"),
    ("VAR='Let\\'s go!'", "Let's go!"),
    ('VAR="{\\"hello\\": \\"json\\"}"', '{"hello": "json"}'),
    ('VAR="some\\tvalue"', "some\tvalue"),
    ("VAR='some\\tvalue'", "some\\tvalue"),
    ("VAR=some\\tvalue", "some\\tvalue"),
    ('VAR="a\\nb"', "a\nb"),
    ('VAR="cost \\$5"', "cost $5"),
    ("VAR=", ""),
    ("VAR= # only a comment", ""),
    ("VAR=  spaced out  ", "spaced out"),
    ("export VAR=exported", "exported"),
    ("VAR = around", "around"),
])
def test_dotenv_lines(line, value):
    assert dotenv(line + "\n") == {"VAR": value}


def test_dotenv_comments_blank_lines_crlf_and_multiline_values():
    text = "# a comment\n\nA=1\r\n  # indented comment\nB=\"line one\nline two\"\nC='x\ny'\nD=4\n"
    assert dotenv(text) == {"A": "1", "B": "line one\nline two", "C": "x\ny", "D": "4"}


def test_dotenv_interpolates_unquoted_and_double_quoted_values_the_shell_first():
    text = "HOST=db\nURL=postgres://${HOST}/app\nQ=\"$HOST:$PORT\"\nS='$HOST'\nSHELL_WINS=$FROM_SHELL\nFROM_SHELL=file\n"
    got = dotenv(text, {"PORT": "5432", "FROM_SHELL": "shell"})
    assert got == {"HOST": "db", "URL": "postgres://db/app", "Q": "db:5432", "S": "$HOST", "SHELL_WINS": "shell",
                   "FROM_SHELL": "file"}


@pytest.mark.parametrize("text, fragment", [
    ("A=1\nnot an assignment\n", ".env:2: expected KEY=VALUE"),
    ("A=1\n1BAD=x\n", ".env:2: expected KEY=VALUE"),
    ("A=1\nB=\"never closed\nC=3\n", ".env:2: B: the \" opened here is never closed"),
    ("A='x' trailing\n", ".env:1: A: unexpected text after the closing quote"),
    ("A=1\n\nA=2\n", ".env:3: A: set twice (first on line 1)"),
    ("A=${REQUIRED:?needed for the db}\n", ".env:1: A: required variable REQUIRED is not set: needed for the db"),
    ("A=\"x\\0\"\nB=\"\0\"\n", ".env:2: B: a value cannot contain a NUL"),
    ("B=\"two\nlines\"\nC=${", ".env:3: C:"),
])
def test_dotenv_problems_name_the_line(text, fragment):
    with pytest.raises(DotenvError) as exc:
        dotenv(text)
    assert str(exc.value).startswith(fragment), str(exc.value)


# --- in scaleout.yaml ----------------------------------------------------------------------------------------

def test_every_string_value_is_interpolated_then_validated():
    c = parse_config("name: ${NAME}\nbalancer:\n  port: ${PORT}\n  bind: ${BIND:-127.0.0.1}\n", P,
                     env={"NAME": "from-env", "PORT": "9000"}, dotenv={})
    assert (c.name, c.balancer.port, c.balancer.bind) == ("from-env", 9000, "127.0.0.1")


def test_keys_are_not_interpolated():
    with pytest.raises(ConfigError, match="variable name '\\$KEY'"):
        parse_config("backend:\n  env:\n    $KEY: x\n", P, env={"KEY": "K"}, dotenv={})


def test_hash_key_is_an_nginx_variable_not_a_reference():
    c = parse_config("balancer:\n  strategy: hash\n  hash_key: $cookie_session\n", P, env={}, dotenv={})
    assert c.balancer.hash_key == "$cookie_session" and c.warnings == ()


def test_the_shell_wins_over_dotenv():
    c = parse_config("backend:\n  env: {A: $A, B: $B}\n", P, env={"A": "shell"}, dotenv={"A": "file", "B": "file"})
    assert values(c.backend.env) == {"A": "shell", "B": "file"}


def test_a_missing_required_variable_names_variable_key_line_and_message():
    text = "name: x\nbackend:\n  env:\n    DB: ${DB_PASSWORD:?put DB_PASSWORD in .env}\n"
    with pytest.raises(ConfigError) as exc:
        parse_config(text, P, env={}, dotenv={})
    assert str(exc.value) == ("scaleout.yaml:4: backend.env.DB: required variable DB_PASSWORD is not set: "
                              "put DB_PASSWORD in .env")


def test_every_interpolation_problem_is_reported():
    with pytest.raises(ConfigError) as exc:
        parse_config("name: ${A:?}\nbackend:\n  build: ${B\n  image: ${C:+x}\n", P, env={}, dotenv={})
    assert [p.split(":")[1] for p in exc.value.problems] == ["1", "3", "4"]


def test_unset_variables_become_warnings_with_their_line():
    c = parse_config("name: x\nbackend:\n  env:\n    A: a${NOPE}b\n", P, env={}, dotenv={})
    assert values(c.backend.env) == {"A": "ab"}
    assert c.warnings == ("scaleout.yaml:4: backend.env.A: variable NOPE is not set; using an empty string",)


def test_env_accepts_compose_list_form():
    c = parse_config("backend:\n  env: [A=1, 'B=${X}', C=]\n", P, env={"X": "x"}, dotenv={})
    assert c.backend.env == {"A": Interpolated("1", "1"), "B": Interpolated("x", "${X}"), "C": Interpolated("", "")}
    with pytest.raises(ConfigError, match=r"backend.env: item 0: must be \"KEY=VALUE\""):
        parse_config("backend:\n  env: [JUST_A_NAME]\n", P, env={}, dotenv={})


def test_a_newline_from_a_variable_is_fine_a_written_one_is_not():
    c = parse_config("backend:\n  env: {KEY: $PEM}\n", P, env={}, dotenv={"PEM": "-----BEGIN\nabc\n-----END"})
    assert c.backend.env == {"KEY": Interpolated("-----BEGIN\nabc\n-----END", "$PEM")}
    with pytest.raises(ConfigError, match="scaleout.yaml:2: backend.env: KEY: value must not contain newlines"):
        parse_config('backend:\n  env: {KEY: "a\\nb"}\n', P, env={}, dotenv={})


# --- the secrets rule ---------------------------------------------------------------------------------------

SECRET = "hunter2-very-secret"


def secret_project(tmp_path: Path) -> Path:
    (tmp_path / ".env").write_text(f"DB_PASSWORD={SECRET}\n")
    (tmp_path / "scaleout.yaml").write_text(
        "name: secrets\n"
        "backend:\n"
        "  env:\n"
        "    DATABASE_URL: postgres://app:${DB_PASSWORD}@db/app\n"
        "    PRICE: cost $5 or $$6\n"
        "  health:\n"
        "    command: test -n \"$DB_PASSWORD\"\n"
        "services:\n"
        "  db:\n"
        "    image: postgres:${IMAGE_TAG:-16}\n"  # an image from .env is refused (tests/test_written_resolved.py)
        "    environment:\n"
        "      POSTGRES_PASSWORD: ${DB_PASSWORD:?set it in .env}\n"
        "    command: [postgres, -c, 'password=${DB_PASSWORD}']\n"
        "    healthcheck:\n"
        "      test: pg_isready --password=$DB_PASSWORD\n"
    )
    return tmp_path


def test_values_come_from_dotenv_and_the_compose_text_keeps_the_references(tmp_path):
    from scaleout.config.load import load_config

    c = load_config(secret_project(tmp_path), env={})
    assert c.backend.env == {
        "DATABASE_URL": Interpolated(f"postgres://app:{SECRET}@db/app", "postgres://app:${DB_PASSWORD}@db/app"),
        "PRICE": Interpolated("cost $5 or $6", "cost $$5 or $$6")}
    assert c.backend.health.command == Interpolated(f'test -n "{SECRET}"', 'test -n "$DB_PASSWORD"')
    db = c.services["db"]
    assert db.image == "postgres:16"
    assert db.environment == {"POSTGRES_PASSWORD": Interpolated(SECRET, "${DB_PASSWORD:?set it in .env}")}
    assert db.command == (Interpolated("postgres", "postgres"), Interpolated("-c", "-c"),
                          Interpolated(f"password={SECRET}", "password=${DB_PASSWORD}"))
    assert db.healthcheck.test == (
        Interpolated("CMD-SHELL", "CMD-SHELL"),
        Interpolated(f"pg_isready --password={SECRET}", "pg_isready --password=$DB_PASSWORD"))
    assert c.dotenv == {"DB_PASSWORD": SECRET}
    assert c.engine_environment({"DB_PASSWORD": "from-shell"})["DB_PASSWORD"] == "from-shell"
    assert c.engine_environment({})["DB_PASSWORD"] == SECRET


def test_no_compose_text_no_dump_and_no_repr_holds_a_dotenv_value(tmp_path):
    from scaleout.config.load import load_config

    c = load_config(secret_project(tmp_path), env={})
    compose_texts = [c.backend.env, c.backend.health.command, c.services["db"].environment,
                     c.services["db"].command, c.services["db"].healthcheck.test]
    assert SECRET not in repr(compose_texts) and "${DB_PASSWORD}" in repr(compose_texts)
    assert SECRET not in repr(c)
    assert "dotenv" not in c.model_dump()


def test_overrides_keep_dotenv_warnings_and_compose_text(tmp_path):
    from scaleout.config.load import load_config

    c = load_config(secret_project(tmp_path), env={})
    o = c.with_overrides(Overrides(replicas=2, port=9999))
    assert o.dotenv == c.dotenv and o.warnings == c.warnings
    assert o.backend.env == c.backend.env and o.services == c.services
    assert o.backend.env["DATABASE_URL"].compose == "postgres://app:${DB_PASSWORD}@db/app"
    assert o.backend.replicas == 2 and o.balancer.port == 9999


def test_the_old_compose_text_fields_and_internal_fields_are_not_keys_of_the_file():
    for text, key in [
        ("backend:\n  env: {A: x}\n  env_compose: {A: y}\n", "backend.env_compose"),
        ("backend:\n  env_compose: {A: y}\n", "backend.env_compose"),
        ("backend:\n  health:\n    command_compose: x\n", "backend.health.command_compose"),
        ("services:\n  db:\n    image: x\n    environment_compose: {A: b}\n", "services.db.environment_compose"),
        ("dotenv: {A: b}\n", "dotenv"),
        ("warnings: []\n", "warnings"),
    ]:
        with pytest.raises(ConfigError, match=f"{key}: unknown key"):
            parse_config(text, P, env={}, dotenv={})
    # nor can the file spell a value and its Compose text itself
    with pytest.raises(ConfigError, match="backend.env: A: value must be a string, number or boolean"):
        parse_config("backend:\n  env: {A: {value: x, compose: y}}\n", P, env={}, dotenv={})


def test_models_built_in_code_get_literal_compose_text():
    from scaleout.config.sections import BackendConfig

    b = BackendConfig(env={"A": "cost $5"})
    assert b.env == {"A": Interpolated("cost $5", "cost $$5")} == {"A": Interpolated.literal("cost $5")}


# --- .env on disk -----------------------------------------------------------------------------------------------

def test_dotenv_is_read_beside_scaleout_yaml(tmp_path):
    from scaleout.config.load import load_config

    (tmp_path / "scaleout.yaml").write_text("name: ${NAME}\n")
    (tmp_path / ".env").write_text("NAME=from-dotenv\n")
    assert load_config(tmp_path, env={}).name == "from-dotenv"
    assert load_config(tmp_path, env={"NAME": "from-shell"}).name == "from-shell"


def test_dotenv_link_inside_the_project_is_fine_outside_is_refused(tmp_path):
    from scaleout.config.load import load_config

    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "scaleout.yaml").write_text("name: ${NAME}\n")
    (proj / "vars").write_text("NAME=linked\n")
    (proj / ".env").symlink_to("vars")
    assert load_config(proj, env={}).name == "linked"
    (proj / ".env").unlink()
    (tmp_path / "outside.env").write_text("NAME=outside\n")
    (proj / ".env").symlink_to(tmp_path / "outside.env")
    with pytest.raises(ConfigError, match="link leading outside the project"):
        load_config(proj, env={})


def test_dotenv_problems_are_config_errors_naming_the_file(tmp_path):
    from scaleout.config.load import load_config

    (tmp_path / "scaleout.yaml").write_text("name: x\n")
    (tmp_path / ".env").write_bytes(b"A=1\nB=\xff\n")
    with pytest.raises(ConfigError, match=r"\.env:2: cannot be read: not valid UTF-8"):
        load_config(tmp_path, env={})
    (tmp_path / ".env").write_text("A=${X:?}\n")
    with pytest.raises(ConfigError, match=r"\.env:1: A: required variable X is not set"):
        load_config(tmp_path, env={})


def test_overrides_still_raise_usage_errors():
    c = parse_config("", P, env={}, dotenv={})
    with pytest.raises(UsageError, match="--port"):
        c.with_overrides(Overrides(port=0))
