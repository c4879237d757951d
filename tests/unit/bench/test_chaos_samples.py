"""The campaign's resource figures: growth is read on the longest-lived process, warm."""

from __future__ import annotations

from gateway.bench.chaos.campaign import Samples


def test_growth_is_read_on_the_longest_lived_process_after_its_first_minute() -> None:
    samples = Samples()
    # pid 1 runs 0..300 s: 11 MiB at start, 50 warm, 52 at the end; pid 2 (a restart) is short
    samples.points += [(t, 11.0 if t == 0 else 50.0 + t / 150, 5, 1) for t in range(0, 310, 10)]
    samples.points += [(310.0, 11.0, 3, 2), (320.0, 40.0, 6, 2)]
    fig = samples.summary()
    assert fig["processes"] == 2
    run = fig["longest_run"]
    assert run["seconds"] == 300
    assert (run["rss_mib_warm"], run["rss_mib_last"]) == (50.4, 52.0)
    assert fig["rss_mib"] == {"first": 11.0, "max": 52.0, "last": 40.0}


def test_a_process_younger_than_a_minute_reports_its_last_sample() -> None:
    samples = Samples()
    samples.points += [(0.0, 11.0, 3, 7), (10.0, 30.0, 6, 7)]
    run = samples.summary()["longest_run"]
    assert (run["seconds"], run["rss_mib_warm"], run["rss_mib_last"]) == (10, 30.0, 30.0)


def test_no_samples_no_figures() -> None:
    assert Samples().summary() == {}
