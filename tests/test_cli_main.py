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
