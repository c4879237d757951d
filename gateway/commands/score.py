"""``gateway score``: precision and recall of counted line crossings against ground truth."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.commands.common import json_option, print_json


@click.command("score")
@click.argument("counted", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("truth", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--tolerance-s",
    type=click.FloatRange(min=0.0),
    default=1.5,
    show_default=True,
    help="Largest time difference between a counted crossing and the true one it matches.",
)
@click.option(
    "--min-precision",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    help="Exit 1 when any line and direction falls below this precision.",
)
@click.option(
    "--min-recall",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    help="Exit 1 when any line and direction falls below this recall.",
)
@json_option
def score_command(
    *,
    counted: Path,
    truth: Path,
    tolerance_s: float,
    min_precision: float,
    min_recall: float,
    as_json: bool,
) -> None:
    """Match COUNTED crossings (JSON lines, from --crossings) to TRUTH, one by one.

    Prints true positives, false counts and misses with precision and recall per line
    and direction, and per line, direction and class, then the unmatched crossings.
    """
    from gateway.errors import GatewayError
    from gateway.vision.analytics.score import read_records, score

    result = score(read_records(counted), read_records(truth), tolerance_s)
    if as_json:
        print_json(result.as_dict())
    else:
        click.echo(result.table())
        for record in result.false_counts:
            click.echo(f"false count: {record}")
        for record in result.misses:
            click.echo(f"missed: {record}")
    precision, recall = result.worst()
    if precision < min_precision or recall < min_recall:
        raise GatewayError(
            f"worst precision {precision:.3f} (need {min_precision}), "
            f"worst recall {recall:.3f} (need {min_recall})"
        )


def register(app: click.Group) -> None:
    """Add the ``score`` command to the root app."""
    app.add_command(score_command)
