"""Where the Jinja templates live, installed or in a checkout, and the one Jinja environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


def templates_dir() -> Path:
    """The templates folder: inside the installed package (wheel), or the checkout's top-level one."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "templates", package.parent / "templates"):
        if (candidate / "nginx" / "nginx.conf.j2").is_file():
            return candidate
    raise FileNotFoundError(f"scaleout templates not found next to {package}")


@lru_cache(maxsize=1)
def template_env():  # -> jinja2.Environment (jinja2 imported lazily: `scaleout --help` stays fast)
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
