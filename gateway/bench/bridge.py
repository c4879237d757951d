"""Firmware bridge benchmark: decoder throughput and link efficiency under loss.

Decode: a stream of READING frames as the simulated board sends them (5 values, a
leading 0x00, 5 % of frames corrupted) is fed in 4 KiB chunks to ``BridgeDecoder``
(framing, CRC, message decode, dedup, ACK generation) and, separately, to the bare
``Deframer``; the raw baseline is the same chunk loop doing only ``bytes.count(0)``,
i.e. touching every byte once to find the delimiters.

Link: the board and host link state machines exchange frames in virtual time through
seeded fault injection at 0, 10 and 20 % frame loss (both directions, plus bit flips);
the figures are wire bytes per delivered reading and retransmissions per reading, next
to the raw baseline of one READING frame and its ACK with no loss. Run with
``gateway bench bridge`` (``--json`` for machine-readable output).
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import click

from firmware_bridge.codec import encode_frame
from firmware_bridge.framer import Deframer
from firmware_bridge.link import BoardLink, HostLink
from firmware_bridge.messages import (
    FLAG_ACK_REQ,
    KIND_F32,
    KIND_I32_CENTI,
    Ack,
    Hello,
    Message,
    Readings,
    Value,
)
from gateway.output import json_option, print_json
from gateway.sensors.rsb import BridgeDecoder
from simulators.board.faults import FaultConfig, Wire

CHUNK = 4096


def _reading(rng: random.Random, seq: int) -> Message:
    values = (
        Value(0, KIND_F32, rng.uniform(-10, 40)),
        Value(1, KIND_F32, rng.uniform(0, 100)),
        Value(2, KIND_I32_CENTI, rng.randint(95000, 105000)),
        Value(4, KIND_I32_CENTI, rng.randint(0, 50000)),
        Value(6, KIND_F32, rng.uniform(30, 90)),
    )
    return Message(1, seq % 65536, Readings(seq * 1000, values), FLAG_ACK_REQ)


def make_stream(frames: int, seed: int = 1) -> tuple[bytes, int]:
    """Return a HELLO and ``frames`` READINGs as a lossy line delivers them.

    5 % of the frames arrive corrupted, each followed three frames later by its good
    retransmission (as the board would send it), so every reading can be delivered.
    Returns the bytes and the number of wire frames.
    """
    rng = random.Random(seed)
    parts = [b"\x00" + encode_frame(Message(1, 65535, Hello(boot_id=1), FLAG_ACK_REQ))]
    retransmit: list[tuple[int, bytes]] = []
    for seq in range(frames):
        frame = b"\x00" + encode_frame(_reading(rng, seq))
        if rng.random() < 0.05:
            bad = bytearray(frame)
            bad[len(bad) // 2] = bad[len(bad) // 2] ^ 0x01 or 0x02
            parts.append(bytes(bad))
            retransmit.append((seq + 3, frame))
        else:
            parts.append(frame)
        while retransmit and retransmit[0][0] <= seq:
            parts.append(retransmit.pop(0)[1])
    parts += [frame for _, frame in retransmit]
    return b"".join(parts), len(parts)


def measure_decode(frames: int) -> dict[str, Any]:
    """Throughput of BridgeDecoder and Deframer against a raw delimiter scan."""
    data, wire_frames = make_stream(frames)
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    t0 = time.perf_counter()
    zeros = sum(chunk.count(0) for chunk in chunks)
    raw_s = time.perf_counter() - t0
    deframer = Deframer()
    t0 = time.perf_counter()
    for chunk in chunks:
        deframer.feed(chunk)
    framer_s = time.perf_counter() - t0
    decoder = BridgeDecoder()
    readings = acked = 0
    t0 = time.perf_counter()
    for chunk in chunks:
        readings += len(decoder.feed(chunk))
        acked += len(decoder.pending_writes())
    decoder_s = time.perf_counter() - t0
    mb = len(data) / 1e6
    return {
        "bytes": len(data),
        "frames": frames,
        "wire_frames": wire_frames,
        "framer_good": deframer.counters.good,
        "decoder_frames_s": round(frames / decoder_s),
        "decoder_mb_s": round(mb / decoder_s, 2),
        "decoder_us_per_frame": round(decoder_s / frames * 1e6, 2),
        "framer_frames_s": round(frames / framer_s),
        "framer_mb_s": round(mb / framer_s, 2),
        "raw_scan_mb_s": round(mb / raw_s, 1) if raw_s > 0 else None,
        "raw_scan_delimiters": zeros,
        "ack_bytes_written": acked,
        "readings_delivered": readings,
    }


def measure_link(loss: float, readings: int, seed: int = 1) -> dict[str, Any]:
    """Wire bytes and retransmissions per delivered reading at ``loss`` frame loss."""
    faults = FaultConfig(drop_frame=loss, flip=0.001 if loss else 0.0)
    up, down = Wire(faults, random.Random(seed + 1)), Wire(faults, random.Random(seed + 2))
    board = BoardLink(1, Hello(boot_id=1), first_seq=0, rto=0.3)
    host, host_rx, board_rx = HostLink(), Deframer(), Deframer()
    rng = random.Random(seed)
    produced = delivered = up_bytes = down_bytes = 0
    t = 0.0
    while delivered < readings and t < 100_000:
        t += 0.02
        if produced < readings and board.offer(_reading(rng, produced).body) is not None:
            produced += 1
        frames = [b"\x00" + encode_frame(m) for m in board.poll(t)]
        up_bytes += sum(map(len, frames))
        replies: list[Message] = []
        for chunk in up.apply(frames):
            for msg in host_rx.feed(chunk):
                result = host.receive(msg)
                delivered += len(result.delivered)
                replies += result.replies
        acks = [b"\x00" + encode_frame(m) for m in replies]
        down_bytes += sum(map(len, acks))
        for chunk in down.apply(acks):
            for msg in board_rx.feed(chunk):
                board.receive(msg)
    baseline_up = len(encode_frame(_reading(random.Random(0), 1))) + 1
    baseline_down = len(encode_frame(Message(1, 1, Ack(1)))) + 1
    return {
        "frame_loss": loss,
        "readings": delivered,
        "duplicates_suppressed": host.counters.duplicates,
        "retransmits_per_reading": round(board.counters.retransmits / max(1, delivered), 3),
        "up_bytes_per_reading": round(up_bytes / max(1, delivered), 1),
        "down_bytes_per_reading": round(down_bytes / max(1, delivered), 1),
        "raw_up_bytes_per_reading": baseline_up,
        "raw_down_bytes_per_reading": baseline_down,
        "virtual_seconds": round(t, 1),
    }


@click.command(name="bridge")
@click.option("--frames", type=click.IntRange(100), default=50_000, show_default=True)
@click.option("--readings", type=click.IntRange(10), default=2_000, show_default=True)
@json_option
def command(frames: int, readings: int, as_json: bool) -> None:
    """Measure RSB decode throughput and link efficiency under frame loss."""
    for name in ("firmware_bridge", "gateway.sensors.rsb"):  # bad frames are expected
        logging.getLogger(name).setLevel(logging.ERROR)
    decode = measure_decode(frames)
    links = [measure_link(loss, readings) for loss in (0.0, 0.1, 0.2)]
    if as_json:
        print_json({"decode": decode, "link": links})
        return
    click.echo(f"decode: {decode['frames']} READING frames, {decode['bytes']} bytes, 4 KiB chunks")
    click.echo(
        f"  BridgeDecoder  {decode['decoder_frames_s']:>9} frames/s  "
        f"{decode['decoder_mb_s']:>7} MB/s  {decode['decoder_us_per_frame']} us/frame"
    )
    click.echo(
        f"  Deframer only  {decode['framer_frames_s']:>9} frames/s  {decode['framer_mb_s']:>7} MB/s"
    )
    click.echo(f"  raw 0x00 scan  {'':>9}           {decode['raw_scan_mb_s']:>7} MB/s (baseline)")
    click.echo("link (virtual time, RTO 300 ms, window 8):")
    click.echo("  loss  retx/reading  up B/reading (raw)  down B/reading (raw)  dups suppressed")
    for row in links:
        click.echo(
            f"  {row['frame_loss']:4.0%}  {row['retransmits_per_reading']:12}  "
            f"{row['up_bytes_per_reading']:>7} ({row['raw_up_bytes_per_reading']})"
            f"        {row['down_bytes_per_reading']:>7} ({row['raw_down_bytes_per_reading']})"
            f"          {row['duplicates_suppressed']}"
        )
