"""The progress display for logs (the demo's, and progress_bar(lines=True)'s where stderr is not a terminal)."""

from vidshield.utils import LineProgress, progress_bar


def test_line_progress_prints_start_throttled_updates_and_completion():
    lines = []
    bar = LineProgress(lines.append, every=3600.0)
    with bar:
        task = bar.add_task("sparse attack", total=4)
        for _ in range(3):
            bar.advance(task)
        assert lines == ["  sparse attack: 0/4 (0 s)"]  # throttled: nothing until done
        bar.advance(task)
        other = bar.add_task("clips", total=None)
        bar.update(other, advance=2)
    assert lines == ["  sparse attack: 0/4 (0 s)", "  sparse attack: 4/4 (0 s)", "  clips: 0 (0 s)"]


def test_line_progress_reports_every_interval():
    lines = []
    bar = LineProgress(lines.append, every=0.0)
    task = bar.add_task("defend", total=3)
    bar.advance(task)
    bar.advance(task, 2)
    assert [line.split(" (")[0] for line in lines] == ["  defend: 0/3", "  defend: 1/3", "  defend: 3/3"]


def test_line_progress_shows_a_task_without_progress_while_it_runs():
    import time

    lines = []
    with LineProgress(lines.append, every=0.05) as bar:
        bar.add_task("sparse attack", total=8)  # a batch that takes a while: no advance
        deadline = time.monotonic() + 5
        while len(lines) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(lines) >= 3 and all(line.startswith("  sparse attack: 0/8") for line in lines)


def test_line_progress_does_not_repeat_a_finished_task():
    import time

    lines = []
    with LineProgress(lines.append, every=0.02) as bar:
        task = bar.add_task("clips", total=2)
        bar.advance(task, 2)
        time.sleep(0.2)
    assert [line.split(" (")[0] for line in lines] == ["  clips: 0/2", "  clips: 2/2"]


def test_progress_bar_gives_lines_on_a_log_and_nothing_without_lines(capsys):
    # under pytest stderr is captured, so not a terminal
    with progress_bar(lines=True) as bar:
        assert isinstance(bar, LineProgress)
        bar.add_task("scan", total=2)
    assert capsys.readouterr().err.startswith("  scan: 0/2")
    with progress_bar() as bar:
        assert not isinstance(bar, LineProgress)
        bar.add_task("scan", total=2)
    with progress_bar(lines=True, disable=True) as bar:
        assert not isinstance(bar, LineProgress)
    assert capsys.readouterr().err == ""
