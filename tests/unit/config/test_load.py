"""From the text of scaleout.yaml and its .env to a Config (scaleout/config/load.py): which file a message
names, how .env is shown beside the config it belongs to, and what an unreadable file says."""

from __future__ import annotations

import pytest

from scaleout.config.load import load_config, parse_config
from scaleout.errors import ConfigError
from tests.helpers.config import problem


def test_a_missing_scaleout_yaml_says_how_to_start(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, env={})
    assert err.value.message == f"{tmp_path.resolve() / 'scaleout.yaml'}: not found"
    assert err.value.hint == "run `scaleout init` to create a project, or cd into one"


def test_a_problem_with_no_line_names_the_file_only(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (tmp_path / "out").mkdir()
    (project / "public").symlink_to(tmp_path / "out")  # static.dir's default, not written in the file
    assert problem(project, "") == "scaleout.yaml: static.dir: 'public' points outside the project folder"
    with pytest.raises(ConfigError) as err:
        parse_config("", tmp_path, env={"SCALEOUT_LB_IMAGE": "bad image"})
    assert str(err.value) == ("scaleout.yaml: images.balancer: must be an image reference such as nginx:1.27 or "
                              "registry.example.com/team/app:tag (got 'bad image')")


def test_dotenv_is_shown_beside_the_config_it_belongs_to(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / ".env").write_text("not a line\n")
    with pytest.raises(ConfigError) as err:
        parse_config("", project, source="conf/scaleout.yaml", env={})
    assert str(err.value).startswith("conf/.env:1: ")
    with pytest.raises(ConfigError) as err:
        parse_config("", project, source="./scaleout.yaml", env={})
    assert str(err.value).startswith(".env:1: ")
    with pytest.raises(ConfigError) as err:
        parse_config("", project, env={})
    assert str(err.value).startswith(".env:1: ")


def test_dotenv_files_that_cannot_be_used(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (tmp_path / "o.env").write_text("A=1\n")
    (project / ".env").symlink_to(tmp_path / "o.env")
    with pytest.raises(ConfigError) as err:
        parse_config("", project, env={})
    assert err.value.message == ".env: is a link leading outside the project folder; scaleout does not follow it"
    assert err.value.hint == "put the variables in a .env file inside the project"
    (project / ".env").unlink()
    (project / ".env").symlink_to(project / "gone.env")
    with pytest.raises(ConfigError) as err:
        parse_config("", project, env={})
    assert str(err.value) == ".env: is a link to a file that does not exist"
    (project / ".env").unlink()
    (project / ".env").mkdir()
    with pytest.raises(ConfigError) as err:
        parse_config("", project, env={})
    assert str(err.value) == ".env: is a folder; scaleout reads only regular files"
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError) as err:
        parse_config("", tmp_path / "file", env={})
    assert str(err.value) == ".env: cannot be read: Not a directory"


def test_load_config_names_the_file_as_the_user_sees_it(tmp_path, monkeypatch):
    project = tmp_path / "p"
    project.mkdir()
    (project / "scaleout.yaml").write_text("name: Bad\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_config("p", env={})
    assert str(err.value).startswith("p/scaleout.yaml:1: name: must be a DNS label")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(ConfigError) as err:
        load_config(project, env={})
    assert str(err.value).startswith(f"{project}/scaleout.yaml:1: name: must be a DNS label")
    (project / "scaleout.yaml").write_text("name: good\n")
    monkeypatch.chdir(project)
    assert load_config(env={}).name == "good"
    (project / "scaleout.yaml").write_bytes(b"name: \xff\n")
    with pytest.raises(ConfigError) as err:
        load_config(env={})
    assert str(err.value) == "scaleout.yaml:1: cannot be read: not valid UTF-8 (byte 6); save it as UTF-8"


def test_engine_environment_puts_the_shell_over_dotenv(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("A=from-dotenv\nB=from-dotenv\n")
    c = parse_config("", tmp_path, env={})
    assert c.engine_environment({"B": "shell"}) == {"A": "from-dotenv", "B": "shell"}
    monkeypatch.setenv("B", "exported")
    env = c.engine_environment()
    assert env["A"] == "from-dotenv" and env["B"] == "exported" and "PATH" in env


def test_load_config_names_a_scaleout_yaml_it_cannot_read(tmp_path, monkeypatch):
    (tmp_path / "scaleout.yaml").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_config(env={})
    assert str(err.value) == "scaleout.yaml: is a folder; scaleout reads only regular files"


def test_top_level_shape_and_internal_keys(proj, monkeypatch):
    assert problem(proj, "- a\n- b") == (
        "scaleout.yaml: the file must be a mapping of keys (name, backend, balancer, ...), not a list")
    assert problem(proj, "name: x\nproject_dir: /etc") == "scaleout.yaml:2: project_dir: unknown key"
    monkeypatch.setenv("SCALEOUT_LB_IMAGE", "local/lb:7")
    assert parse_config("", proj).images.balancer == "local/lb:7"  # env defaults to the process environment
