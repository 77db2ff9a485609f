"""The ``vidshield`` command line. One module per subcommand, each exposing a click command
named ``command``; modules are imported only when their command runs, so ``--help`` is fast.

Tests call :func:`main` in process: ``main(["detect", "clip.mkv", "--json"]) -> exit status``.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import click

from vidshield import __version__
from vidshield.errors import VidshieldError
from vidshield.text import printable

# command name -> (module under vidshield.cli, one-line help shown by `vidshield --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "Run the whole system on synthetic videos (offline, about a minute)."),
    "reproduce": ("reproduce", "Reproduce the paper's Tables 1-4 and figures on a data set."),
    "scan": ("scan", "Is this video attacked? Verdict, alpha, label before and after defense."),
    "info": ("info", "Probe a video file: size, fps, frame count, codec."),
    "defend": ("defend", "Purify a video: temporal, spatial or codec defense."),
    "pack": ("pack", "Decode a data set once into clip-set files (fast training, no PyAV needed)."),
    "synth": ("synth", "Export the synthetic action data set as video files."),
    "detect": ("detect", "Detect adversarial videos: verdict, alpha and exception frames."),
    "calibrate": ("calibrate", "Choose the detection thresholds (Tables 1, 2), ROC/AUC and figures."),
    "train": ("train", "Train a victim classifier (C3D, CNN+LSTM) on a data set."),
    "evaluate": ("evaluate", "Accuracy, per-class accuracy and confusion matrix of a classifier."),
    "models": ("models", "List the model architectures and the shipped checkpoints."),
    "attack": ("attack", "Build an adversarial (or clean) data set: sparse, dense, pgd, framing."),
    "train-comdefend": ("train_comdefend", "Train the ComDefend spatial defense on video frames."),
    "train-detector": ("train_detector", "Train a per-frame detection network for any classifier (distillation)."),
    "serve": ("serve", "Run the scanning service: HTTP API, page, workers (needs the serve extra)."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"vidshield.cli.{COMMANDS[name][0]}")
        return module.command

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vidshield")
def cli():
    """vidshield: detect adversarial videos by temporal consistency, and purify them.

    \b
    Examples:
      vidshield demo                      # end-to-end on synthetic videos, offline
      vidshield info clip.mp4             # probe a video
      vidshield COMMAND --help            # help and examples for one command
    """


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings as one plain line on stderr (``warning: ...``), without the source line."""
    click.echo(f"warning: {printable(message)}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 ok, 1 failure, 2 usage or input error).

    Errors a user can cause (:class:`~vidshield.errors.VidshieldError`) print one line,
    ``error: ...``, with control characters escaped; warnings print one line each."""
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    try:
        rv = cli.main(args=argv, prog_name="vidshield", standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except VidshieldError as e:
        click.secho(f"error: {printable(e)}", fg="red", err=True)
        return 2
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
