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
