"""Where the Jinja templates live, installed or in a checkout, and the one Jinja environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


def templates_dir() -> Path:
    """The templates folder: inside the installed package (wheel), or the checkout's top-level one."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "nginx" / "nginx.conf.j2").is_file():
            return candidate
    raise FileNotFoundError(f"scaleout templates not found next to {here}")


@lru_cache(maxsize=1)
def template_env():  # -> jinja2.Environment (jinja2 imported lazily: `scaleout --help` stays fast)
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
