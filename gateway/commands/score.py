"""``gateway score``: precision and recall of counted line crossings against ground truth."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from gateway.commands.common import json_option, print_json
from gateway.errors import UsageError


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
@click.option(
    "--detections",
    "detections_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The run's raw detections (gateway count --detections): misses whose object no "
    "raw detection matched (by the truth's boxes) are unseen; recall over the seen ones too.",
)
@click.option(
    "--min-seen-recall",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    help="Exit 1 when any line and direction falls below this recall over seen crossings.",
)
@json_option
def score_command(
    *,
    counted: Path,
    truth: Path,
    tolerance_s: float,
    min_precision: float,
    min_recall: float,
    detections_path: Path | None,
    min_seen_recall: float,
    as_json: bool,
) -> None:
    """Match COUNTED crossings (JSON lines, from --crossings) to TRUTH, one by one.

    Prints true positives, false counts and misses with precision and recall per line
    and direction, and per line, direction and class, then the unmatched crossings.
    With --detections, each miss is also called seen or unseen by the raw detector.
    """
    from gateway.errors import GatewayError
    from gateway.vision.analytics.score import read_records, score
    from gateway.vision.analytics.sight import read_detections

    if min_seen_recall and detections_path is None:
        raise UsageError("--min-seen-recall needs --detections")
    dets = read_detections(detections_path) if detections_path is not None else None
    result = score(read_records(counted), read_records(truth), tolerance_s, dets)
    if as_json:
        print_json(result.as_dict())
    else:
        click.echo(result.table())
        for record in result.false_counts:
            click.echo(f"false count: {record}")
        unseen = {id(r) for r in result.unseen or ()}
        for record in result.misses:
            what = "unseen" if id(record) in unseen else "missed"
            click.echo(f"{what}: {dataclasses.replace(record, boxes=None)}")
    precision, recall = result.worst()
    _, seen_recall = result.worst(seen=True)
    if precision < min_precision or recall < min_recall or seen_recall < min_seen_recall:
        raise GatewayError(
            f"worst precision {precision:.3f} (need {min_precision}), "
            f"worst recall {recall:.3f} (need {min_recall}), "
            f"worst recall over seen crossings {seen_recall:.3f} (need {min_seen_recall})"
        )


def register(app: click.Group) -> None:
    """Add the ``score`` command to the root app."""
    app.add_command(score_command)
