"""``python -m simulators fleet``: N virtual gateways publishing to a broker."""

from __future__ import annotations

import click

from gateway.output import json_option, print_json
from simulators.fleet.gateway import Profile


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--gateways", type=click.IntRange(1, 2000), default=10, show_default=True)
@click.option(
    "--rate",
    type=click.FloatRange(0, 10_000),
    default=1.0,
    show_default=True,
    help="Line crossings per second per gateway.",
)
@click.option("--seconds", type=click.FloatRange(0.1, 86_400), default=30.0, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=1883, show_default=True)
@click.option("--cameras", type=click.IntRange(1, 16), default=2, show_default=True)
@click.option("--aggregate-s", type=click.FloatRange(min=0.5), default=10.0, show_default=True)
@click.option("--sensor-s", type=click.FloatRange(min=0.5), default=5.0, show_default=True)
@click.option("--health-s", type=click.FloatRange(min=0.5), default=15.0, show_default=True)
@click.option(
    "--outage-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Outages started per second per gateway.",
)
@click.option("--outage-s", type=click.FloatRange(min=0.1), default=5.0, show_default=True)
@click.option("--prefix", default="city", show_default=True, help="Topic prefix.")
@click.option("--site", default="fleet", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
def command(  # noqa: PLR0917 (one parameter per option)
    gateways: int,
    rate: float,
    seconds: float,
    host: str,
    port: int,
    cameras: int,
    aggregate_s: float,
    sensor_s: float,
    health_s: float,
    outage_rate: float,
    outage_s: float,
    prefix: str,
    site: str,
    seed: int,
    as_json: bool,
) -> None:
    """Publish line crossings, aggregates, sensor readings and health from N virtual gateways."""
    from simulators.fleet.runner import run_fleet

    profile = Profile(
        rate=rate,
        cameras=cameras,
        aggregate_s=aggregate_s,
        sensor_s=sensor_s,
        health_s=health_s,
        outage_rate=outage_rate,
        outage_s=outage_s,
        prefix=prefix,
    )
    report = run_fleet(
        gateways=gateways,
        profile=profile,
        seconds=seconds,
        host=host,
        port=port,
        seed=seed,
        site=site,
    )
    if as_json:
        print_json(report.as_dict())
        return
    rate_s = report.total / report.seconds if report.seconds else 0.0
    click.echo(
        f"{gateways} gateways, {report.seconds:.1f} s: {report.total} events "
        f"({rate_s:.0f}/s), outages {sum(report.outages.values())}, "
        f"dropped {sum(report.dropped.values())}"
    )
