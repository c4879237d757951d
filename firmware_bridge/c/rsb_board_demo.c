/*
 * A minimal board on stdin/stdout using the C reference (host build, POSIX).
 * Usage: rsb_board_demo NODE COUNT [FIRST_SEQ] [BOOT_ID]
 * Says HELLO, sends COUNT readings (channel 0 F32 = i, channel 1 I32 = i) every 20 ms,
 * retransmits until ACKed, answers PING with PONG and OUTPUT_SET (4 outputs with leases,
 * rsb_output.h) with OUTPUT_STATE, exits 0 once every reading is ACKed
 * (1 after 120 s). The line is binary: run it on a raw pseudo-terminal or pipes.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "rsb_frame.h"
#include "rsb_link.h"
#include "rsb_output.h"

#define DEMO_OUTPUTS 4u
static rsb_output_t outputs[DEMO_OUTPUTS];

static uint32_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static void write_all(const uint8_t *data, size_t len)
{
    while (len) {
        ssize_t n = write(STDOUT_FILENO, data, len);
        if (n <= 0) {
            return;
        }
        data += n;
        len -= (size_t)n;
    }
}

static rsb_link_t link_state;

static void answer(const rsb_header_t *req, uint8_t type, const uint8_t *payload, size_t len)
{
    rsb_header_t r;
    uint8_t wire[RSB_MAX_WIRE];
    size_t w = 0;
    r.version = RSB_VERSION;
    r.type = type;
    r.flags = 0;
    r.node = link_state.node;
    r.seq = req->seq;
    wire[0] = 0;
    if (rsb_frame_build(&r, payload, len, wire + 1, sizeof wire - 1, &w) == RSB_OK) {
        write_all(wire, w + 1);
    }
}

static void handle(const uint8_t *frame, size_t len, uint32_t start)
{
    rsb_header_t h;
    uint8_t payload[RSB_MAX_PAYLOAD];
    uint8_t pong[8];
    uint8_t state[RSB_OUTPUT_STATE_LEN];
    size_t n = 0;
    size_t w = 0;
    if (rsb_frame_parse(frame, len, &h, payload, sizeof payload, &n) != RSB_OK) {
        return;
    }
    if (rsb_link_on_message(&link_state, &h, payload, n) || h.node != link_state.node) {
        return;
    }
    if (h.type == RSB_PING) {
        for (w = 0; w < 4; w++) {
            pong[w] = payload[w];
        }
        rsb_put_u32(&pong[4], now_ms() - start);
        answer(&h, RSB_PONG, pong, sizeof pong);
    } else if (h.type == RSB_OUTPUT_SET) {
        rsb_output_set(outputs, DEMO_OUTPUTS, payload, now_ms(), state);
        answer(&h, RSB_OUTPUT_STATE, state, sizeof state);
    }
}

int main(int argc, char **argv)
{
    uint8_t hello[RSB_HELLO_MAX];
    uint8_t out[RSB_MAX_WIRE];
    uint8_t in[512];
    rsb_deframer_t rx;
    uint32_t start = now_ms();
    uint32_t next_reading = start;
    unsigned long produced = 0;
    unsigned long count;
    uint8_t node;
    size_t hello_len;
    size_t n_out;
    if (argc < 3) {
        fprintf(stderr, "usage: %s NODE COUNT [FIRST_SEQ] [BOOT_ID]\n", argv[0]);
        return 2;
    }
    node = (uint8_t)strtoul(argv[1], NULL, 10);
    count = strtoul(argv[2], NULL, 10);
    hello_len = rsb_hello_payload(hello, 0, 1, 0,
                                  (uint16_t)(argc > 4 ? strtoul(argv[4], NULL, 10) : 1u),
                                  0x0Bu, "c-demo");
    rsb_link_init(&link_state, node, (uint16_t)(argc > 3 ? strtoul(argv[3], NULL, 10) : 0u),
                  hello, hello_len, 150u);
    rsb_deframer_init(&rx);
    for (n_out = 0; n_out < DEMO_OUTPUTS; n_out++) {
        rsb_output_init(&outputs[n_out], RSB_KIND_I32, 0u);
    }
    for (;;) {
        uint32_t now = now_ms();
        size_t n = 0;
        fd_set fds;
        struct timeval tv;
        if (now - start > 120000u) {
            fprintf(stderr, "timeout: %lu produced, %u pending\n", produced,
                    (unsigned)rsb_link_pending(&link_state));
            return 1;
        }
        if (produced < count && (int32_t)(now - next_reading) >= 0) {
            uint8_t payload[RSB_LINK_PAYLOAD];
            size_t len = rsb_reading_init(payload, now - start);
            rsb_reading_add_f32(payload, &len, 0, (float)produced);
            rsb_reading_add_i32(payload, &len, 1, RSB_KIND_I32, (int32_t)produced);
            if (rsb_link_offer(&link_state, RSB_READING, payload, len) == RSB_OK) {
                produced++;
                next_reading = now + 20u;
            }
        }
        rsb_output_poll(outputs, DEMO_OUTPUTS, now);
        while (rsb_link_poll(&link_state, now, out, sizeof out, &n) == 1) {
            write_all(out, n);
        }
        if (produced == count && !rsb_link_pending(&link_state) &&
            !rsb_link_hello_pending(&link_state)) {
            fprintf(stderr, "done: %lu readings, %lu retransmits, %lu stale acks\n", produced,
                    (unsigned long)link_state.retransmits,
                    (unsigned long)link_state.stale_acks);
            return 0;
        }
        FD_ZERO(&fds);
        FD_SET(STDIN_FILENO, &fds);
        tv.tv_sec = 0;
        tv.tv_usec = 5000;
        if (select(STDIN_FILENO + 1, &fds, NULL, NULL, &tv) > 0) {
            ssize_t got = read(STDIN_FILENO, in, sizeof in);
            ssize_t i;
            if (got <= 0) {
                fprintf(stderr, "line closed\n");
                return 1;
            }
            for (i = 0; i < got; i++) {
                const uint8_t *frame = NULL;
                size_t len = 0;
                if (rsb_deframer_push(&rx, in[i], &frame, &len) == 1) {
                    handle(frame, len, start);
                }
            }
        }
    }
}
