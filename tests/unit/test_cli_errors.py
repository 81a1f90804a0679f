"""One CLI handler: every error category becomes one line and its documented exit code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from shopfloor import errors
from shopfloor.cli import ShopfloorGroup, app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _app_raising(exc: Exception) -> typer.Typer:
    probe = typer.Typer(cls=ShopfloorGroup)

    @probe.command()
    def boom() -> None:
        raise exc

    @probe.command()
    def fine() -> None:
        typer.echo("ok")

    return probe


@pytest.mark.parametrize("category", errors.CATEGORIES)
def test_each_category_maps_to_its_exit_code_in_one_line(category: type[errors.ShopfloorError]) -> None:
    result = runner.invoke(_app_raising(category("the reason\nwith a second line")), ["boom"])
    assert result.exit_code == category.exit_code
    assert result.output == "error: the reason with a second line\n"
    assert "Traceback" not in result.output


def test_codes_are_distinct_and_not_one() -> None:
    codes = [c.exit_code for c in errors.CATEGORIES]
    assert len(set(codes)) == len(codes) and 1 not in codes and 0 not in codes


def test_long_messages_are_bounded() -> None:
    result = runner.invoke(_app_raising(errors.InvalidInputError("x" * 1_000_000)), ["boom"])
    assert result.exit_code == 2 and len(result.output) <= errors.MAX_MESSAGE_CHARS + 10


def test_a_bug_is_not_swallowed() -> None:
    result = runner.invoke(_app_raising(KeyError("bug")), ["boom"])
    assert result.exit_code == 1 and isinstance(result.exception, KeyError)


def test_readme_documents_every_exit_code() -> None:
    """The README's exit-code table is the user's contract: it must match the error tree."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Exit codes"):]
    rows = dict(re.findall(r"^\| (\d) \| `(\w+)` \|", section, flags=re.M))
    assert rows == {str(c.exit_code): c.__name__ for c in errors.CATEGORIES}


def test_sub_command_errors_go_through_the_same_handler(tmp_path: Path) -> None:
    result = runner.invoke(app, ["models", "show", "v9999", "--registry", str(tmp_path / "reg")])
    assert result.exit_code == errors.NotFoundError.exit_code, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
