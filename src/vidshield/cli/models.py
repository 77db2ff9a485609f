"""``vidshield models``: the registered architectures and the shipped checkpoints."""

from __future__ import annotations

import click

from vidshield.cli.options import echo_json, json_option


@click.command("models")
@json_option
def command(as_json):
    """List the registered architectures (parameters with 10 classes, input T x H x W, whether
    they have a per-frame path) and the shipped trained checkpoints.

    \b
    Examples:
      vidshield models
      vidshield models --json
    """
    import torch
    from rich.console import Console
    from rich.table import Table

    from vidshield.models import create_model, list_models, list_shipped

    architectures = []
    for name in list_models():
        with torch.device("meta"):  # counts parameters without allocating them
            model = create_model(name, num_classes=10)
        architectures.append(
            {
                "name": name,
                "class": type(model).__name__,
                "parameters_10_classes": sum(p.numel() for p in model.parameters()),
                "input_spec": model.input_spec.to_dict(),
                "has_frame_logits": model.has_frame_logits,
            }
        )
    shipped = list_shipped()
    if as_json:
        echo_json({"architectures": architectures, "shipped": shipped})
        return 0
    console = Console()
    table = Table(title="architectures")
    for col in ("name", "class", "params (K=10)", "input T x H x W", "per-frame path"):
        table.add_column(col)
    for a in architectures:
        spec = a["input_spec"]
        table.add_row(
            a["name"],
            a["class"],
            f"{a['parameters_10_classes'] / 1e6:.2f} M",
            f"{spec['frames']} x {spec['height']} x {spec['width']}",
            "yes" if a["has_frame_logits"] else "no",
        )
    console.print(table)
    table = Table(title="shipped checkpoints")
    for col in ("name", "architecture", "classes", "data set", "test top-1", "size"):
        table.add_column(col)
    for s in shipped:
        dataset = (
            (s.get("dataset") or {}).get("name", "?") if isinstance(s.get("dataset"), dict) else str(s.get("dataset"))
        )
        top1 = s["metrics"].get("test_top1")
        table.add_row(
            s["name"],
            str(s["architecture"]),
            str(s["num_classes"]),
            dataset,
            "-" if top1 is None else f"{top1:.3f}",
            f"{s['size_bytes'] / 1e6:.1f} MB",
        )
    console.print(table if shipped else "no shipped checkpoints")
    return 0
