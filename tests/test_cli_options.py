"""Shared CLI pieces: the recorded command line and the progress display."""

import click
from click.testing import CliRunner

from vidshield.cli.options import command_line
from vidshield.utils import progress_bar


def test_command_line_spells_out_every_option():
    seen = {}

    @click.command("demo-cmd")
    @click.option("--name", default="x y")
    @click.option("--amp/--no-amp", default=None)
    @click.option("--augment/--no-augment", default=True)
    @click.option("--fast", is_flag=True)
    @click.option("--tag", "tags", multiple=True)
    @click.option("--limit", type=int, default=None)
    @click.pass_context
    def cmd(ctx, **_):
        seen["line"] = command_line(ctx)

    assert CliRunner().invoke(cmd, ["--no-augment", "--tag", "a", "--tag", "b"]).exit_code == 0
    assert seen["line"] == "vidshield demo-cmd --name 'x y' --no-augment --tag a --tag b"
    assert CliRunner().invoke(cmd, ["--amp", "--fast", "--limit", "3"]).exit_code == 0
    assert seen["line"] == "vidshield demo-cmd --name 'x y' --amp --augment --fast --limit 3"


def test_progress_goes_to_stderr_and_is_off_when_disabled(capsys):
    with progress_bar(transient=False) as bar:
        task = bar.add_task("work", total=4)
        bar.advance(task, 4)
    out, err = capsys.readouterr()
    assert out == "" and "work" in err and "4/4" in err  # shown while stdout is redirected
    with progress_bar("loss {task.fields[loss]}", disable=True) as bar:
        bar.add_task("work", total=2, loss=0.5)
    assert capsys.readouterr() == ("", "")
    try:  # a transient bar leaves nothing on a stderr that is not a terminal, not even a blank line
        with progress_bar() as bar:
            bar.add_task("work", total=2)
            raise KeyError("stop")
    except KeyError:
        pass
    assert capsys.readouterr() == ("", "")
