from vidshield.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_every_command_has_help_with_examples(capsys):
    for name in COMMANDS:
        assert main([name, "--help"]) == 0, name
        assert "Example" in capsys.readouterr().out, f"{name} --help has no examples"


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["no-such-command"]) == 2


def test_help_imports_no_heavy_library():
    """``vidshield --help`` and ``vidshield COMMAND --help`` import neither torch, numpy, PyAV, numba
    nor matplotlib: the command modules import them inside the commands."""
    import subprocess
    import sys

    heavy = ("torch", "numpy", "av", "numba", "matplotlib")
    code = (
        "import contextlib, io, sys\n"
        "from vidshield.cli import COMMANDS, main\n"
        "for argv in [['--help']] + [[c, '--help'] for c in COMMANDS]:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main(argv) == 0, argv\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_defend_command_offers_every_registered_defense():
    from vidshield.defenses import DEFENSES
    from vidshield.names import DEFENSE_NAMES

    assert sorted(DEFENSE_NAMES) == sorted(DEFENSES)


def test_scan_imports_no_scipy_and_matplotlib_only_for_its_plot(lossless_video_file, tmp_path):
    """A whole ``vidshield scan`` (default detector, false-alarm budget, in-domain check) never
    imports scipy (the video rule's binomial tail is numpy), and imports matplotlib, and Pillow
    with it, only where it draws the plot (``vidshield.plotting.new_figure``)."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys, traceback\n"
        "first = {}\n"
        "class Watch:  # records where each library is first imported from; imports nothing itself\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        top = name.split('.')[0]\n"
        "        if top in ('scipy', 'matplotlib', 'PIL') and top not in first:\n"
        "            first[top] = [f.name for f in traceback.extract_stack()]\n"
        "        return None\n"
        "sys.meta_path.insert(0, Watch())\n"
        "from vidshield.cli import main\n"
        f"rc = main(['scan', {str(lossless_video_file)!r}, '--report', {str(tmp_path / 'r.json')!r}, "
        f"'--plot', {str(tmp_path / 'r.png')!r}, '--json'])\n"
        "print(json.dumps({'rc': rc, 'first': first}))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["rc"] == 0
    assert "scipy" not in out["first"]
    assert "new_figure" in out["first"]["matplotlib"]
    assert "PIL" not in out["first"] or "new_figure" in out["first"]["PIL"]
    assert (tmp_path / "r.png").stat().st_size > 0
