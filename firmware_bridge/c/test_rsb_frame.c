/* Host unit tests of rsb_frame.c against the shared vectors (vectors.h). */
#include <stdio.h>

#include "rsb_frame.h"
#include "rsb_output.h"
#include "rsb_link.h"
#include "vectors.h"

static int failures = 0;
static int checks = 0;

#define CHECK(cond, name)                                                          \
    do {                                                                           \
        checks++;                                                                  \
        if (!(cond)) {                                                             \
            failures++;                                                            \
            printf("FAIL %s:%d %s: %s\n", __FILE__, __LINE__, (name), #cond);      \
        }                                                                          \
    } while (0)

static int same(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t i;
    if (alen != blen) {
        return 0;
    }
    for (i = 0; i < alen; i++) {
        if (a[i] != b[i]) {
            return 0;
        }
    }
    return 1;
}

static void test_crc(void)
{
    size_t i;
    static const uint8_t check[] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
    CHECK(rsb_crc16(check, sizeof check, RSB_CRC_INIT) == RSB_CRC_CHECK, "crc check value");
    CHECK(rsb_crc16(check + 4, 5, rsb_crc16(check, 4, RSB_CRC_INIT)) == RSB_CRC_CHECK,
          "crc chained");
    for (i = 0; i < N_VECTORS(CRC_VECTORS); i++) {
        const crc_vector_t *v = &CRC_VECTORS[i];
        CHECK(rsb_crc16(v->data, v->len, RSB_CRC_INIT) == v->crc, v->name);
    }
}

static void test_cobs(void)
{
    size_t i;
    uint8_t buf[300];
    size_t n = 0;
    for (i = 0; i < N_VECTORS(COBS_VECTORS); i++) {
        const cobs_vector_t *v = &COBS_VECTORS[i];
        CHECK(rsb_cobs_encode(v->dec, v->dec_len, buf, sizeof buf, &n) == RSB_OK, v->name);
        CHECK(same(buf, n, v->enc, v->enc_len), v->name);
        CHECK(rsb_cobs_decode(v->enc, v->enc_len, buf, sizeof buf, &n) == RSB_OK, v->name);
        CHECK(same(buf, n, v->dec, v->dec_len), v->name);
        CHECK(rsb_cobs_encode(v->dec, v->dec_len, buf, v->enc_len - 1, &n) == RSB_ERR_SPACE,
              v->name);
    }
    CHECK(rsb_cobs_decode(buf, 0, buf, sizeof buf, &n) == RSB_ERR_COBS, "cobs empty");
}

static void test_frames(void)
{
    size_t i;
    uint8_t wire[RSB_MAX_WIRE];
    uint8_t payload[RSB_MAX_PAYLOAD];
    size_t n = 0;
    rsb_header_t h;
    for (i = 0; i < N_VECTORS(FRAME_VECTORS); i++) {
        const frame_vector_t *v = &FRAME_VECTORS[i];
        rsb_header_t want;
        want.version = RSB_VERSION;
        want.type = v->type;
        want.flags = v->flags;
        want.node = v->node;
        want.seq = v->seq;
        CHECK(rsb_frame_build(&want, v->payload, v->payload_len, wire, sizeof wire, &n) ==
                  RSB_OK,
              v->name);
        CHECK(same(wire, n, v->wire, v->wire_len), v->name);
        CHECK(rsb_frame_parse(v->wire, v->wire_len, &h, payload, sizeof payload, &n) == RSB_OK,
              v->name);
        CHECK(h.version == RSB_VERSION && h.type == v->type && h.flags == v->flags &&
                  h.node == v->node && h.seq == v->seq,
              v->name);
        CHECK(same(payload, n, v->payload, v->payload_len), v->name);
    }
}

static void test_malformed(void)
{
    size_t i;
    uint8_t payload[RSB_MAX_PAYLOAD];
    size_t n = 0;
    rsb_header_t h;
    for (i = 0; i < N_VECTORS(MALFORMED_VECTORS); i++) {
        const malformed_vector_t *v = &MALFORMED_VECTORS[i];
        int rc = rsb_frame_parse(v->wire, v->wire_len, &h, payload, sizeof payload, &n);
        if (rc != v->error) {
            printf("  %s: got %d want %d\n", v->name, rc, v->error);
        }
        CHECK(rc == v->error, v->name);
    }
}

static void test_deframer(void)
{
    /* every frame vector, separated by garbage and an oversize run, byte by byte */
    rsb_deframer_t d;
    size_t i;
    size_t j;
    int good = 0;
    int oversize = 0;
    static const uint8_t junk[] = {0x13, 0x37, 0x42, 0x00};
    rsb_deframer_init(&d);
    for (i = 0; i < N_VECTORS(FRAME_VECTORS); i++) {
        const frame_vector_t *v = &FRAME_VECTORS[i];
        const uint8_t *frame = 0;
        size_t len = 0;
        for (j = 0; j < sizeof junk; j++) {
            (void)rsb_deframer_push(&d, junk[j], &frame, &len);
        }
        if (i == 3) {
            for (j = 0; j < 400; j++) {
                if (rsb_deframer_push(&d, 0x55, &frame, &len) == RSB_ERR_LENGTH) {
                    oversize++;
                }
            }
            (void)rsb_deframer_push(&d, 0x00, &frame, &len);
        }
        for (j = 0; j < v->wire_len; j++) {
            if (rsb_deframer_push(&d, v->wire[j], &frame, &len) == 1) {
                rsb_header_t h;
                uint8_t payload[RSB_MAX_PAYLOAD];
                size_t n = 0;
                if (rsb_frame_parse(frame, len, &h, payload, sizeof payload, &n) == RSB_OK &&
                    h.seq == v->seq && h.type == v->type) {
                    good++;
                }
            }
        }
    }
    CHECK(good == (int)N_VECTORS(FRAME_VECTORS), "deframer delivers every frame");
    CHECK(oversize == 1, "deframer reports one oversize run");
}

static void test_reading_builder(void)
{
    /* the worked example of SPEC.md section 7, built with the payload helpers */
    uint8_t payload[RSB_MAX_PAYLOAD];
    uint8_t wire[RSB_MAX_WIRE];
    size_t len = rsb_reading_init(payload, 60000u);
    size_t n = 0;
    rsb_header_t h;
    const frame_vector_t *v = &FRAME_VECTORS[0];
    CHECK(rsb_reading_add_f32(payload, &len, 0, 21.5f) == RSB_OK, "add f32");
    CHECK(rsb_reading_add_i32(payload, &len, 4, RSB_KIND_I32_CENTI, 1234) == RSB_OK, "add i32");
    CHECK(rsb_reading_add_i32(payload, &len, 4, RSB_KIND_F32, 1) == RSB_ERR_SPACE, "bad kind");
    h.version = RSB_VERSION;
    h.type = RSB_READING;
    h.flags = RSB_FLAG_ACK_REQ;
    h.node = 7;
    h.seq = 0x0102;
    CHECK(rsb_frame_build(&h, payload, len, wire, sizeof wire, &n) == RSB_OK, "build");
    CHECK(same(wire, n, v->wire, v->wire_len), "worked example bytes");
    CHECK(rsb_f32_from_bits(rsb_f32_bits(-0.5f)) == -0.5f, "f32 bits round trip");
    CHECK(rsb_frame_build(&h, payload, RSB_MAX_PAYLOAD + 1u, wire, sizeof wire, &n) ==
              RSB_ERR_SPACE,
          "payload too long");
    CHECK(rsb_frame_build(&h, payload, len, wire, 10, &n) == RSB_ERR_SPACE, "no room");
}

static int poll_one(rsb_link_t *l, uint32_t now, rsb_header_t *h)
{
    uint8_t out[RSB_MAX_WIRE];
    uint8_t payload[RSB_MAX_PAYLOAD];
    size_t n = 0;
    size_t plen = 0;
    if (rsb_link_poll(l, now, out, sizeof out, &n) != 1) {
        return 0;
    }
    if (out[0] != 0 || rsb_frame_parse(out + 1, n - 1, h, payload, sizeof payload, &plen) !=
                           RSB_OK) {
        return -1;
    }
    return 1;
}

static void host_says(rsb_link_t *l, uint8_t type, uint16_t seq, uint8_t reason)
{
    rsb_header_t h;
    uint8_t payload[3];
    h.version = RSB_VERSION;
    h.type = type;
    h.flags = 0;
    h.node = 5;
    h.seq = 1;
    rsb_put_u16(payload, seq);
    payload[2] = reason;
    (void)rsb_link_on_message(l, &h, payload, type == RSB_ACK ? 2u : 3u);
}

static void test_link(void)
{
    rsb_link_t l;
    rsb_header_t h;
    uint8_t hello[RSB_HELLO_MAX];
    uint8_t reading[11];
    size_t hlen = rsb_hello_payload(hello, 1, 2, 3, 0xBEEF, 0x0F, "c");
    size_t rlen = rsb_reading_init(reading, 0);
    int i;
    int sent = 0;
    int retx = 0;
    (void)rsb_reading_add_i32(reading, &rlen, 1, RSB_KIND_I32, 7);
    CHECK(rsb_payload_check(RSB_HELLO, hello, hlen) == RSB_OK, "hello payload");
    rsb_link_init(&l, 5, 0xFFFE, hello, hlen, 100);
    CHECK(poll_one(&l, 0, &h) == 1 && h.type == RSB_HELLO && h.seq == 0xFFFD &&
              (h.flags & RSB_FLAG_ACK_REQ),
          "hello first, seq before the first data seq");
    CHECK(poll_one(&l, 1, &h) == 0, "nothing due");
    for (i = 0; i < (int)RSB_LINK_QUEUE; i++) {
        CHECK(rsb_link_offer(&l, RSB_READING, reading, rlen) == RSB_OK, "offer");
    }
    CHECK(rsb_link_offer(&l, RSB_READING, reading, rlen) == RSB_ERR_SPACE, "queue bounded");
    CHECK(poll_one(&l, 50, &h) == 0, "no data before the HELLO is acknowledged");
    CHECK(poll_one(&l, 100, &h) == 1 && h.type == RSB_HELLO && (h.flags & RSB_FLAG_RETRANSMIT),
          "hello retransmitted");
    host_says(&l, RSB_ACK, 0xFFFD, 0);
    CHECK(!rsb_link_hello_pending(&l), "hello acknowledged");
    while (poll_one(&l, 110, &h) == 1) {
        CHECK(h.type == RSB_READING && h.seq == (uint16_t)(0xFFFEu + (unsigned)sent), "in order");
        sent++;
    }
    CHECK(sent == (int)RSB_LINK_WINDOW, "window of 8 in flight");
    host_says(&l, RSB_ACK, 0x0000, 0); /* cumulative: 0xFFFE, 0xFFFF, 0x0000 across the wrap */
    CHECK(rsb_link_pending(&l) == RSB_LINK_QUEUE - 3u, "cumulative ack across wrap-around");
    host_says(&l, RSB_ACK, 0x0100, 0);
    CHECK(rsb_link_pending(&l) == RSB_LINK_QUEUE - 3u && l.stale_acks == 1u, "far ack stale");
    sent = 0;
    while (poll_one(&l, 111, &h) == 1) {
        sent++;
    }
    CHECK(sent == 3, "window slid by three");
    while (poll_one(&l, 211, &h) == 1) {
        retx += (h.flags & RSB_FLAG_RETRANSMIT) ? 1 : 0;
    }
    CHECK(retx == 8, "timed-out messages retransmitted");
    host_says(&l, RSB_NACK, 0x0005, 1);
    CHECK(rsb_link_hello_pending(&l), "NO_SESSION starts a resync");
    CHECK(poll_one(&l, 212, &h) == 1 && h.type == RSB_HELLO && h.seq == 0x0000,
          "resync hello names base - 1");
    host_says(&l, RSB_ACK, 0x0000, 0);
    CHECK(!rsb_link_hello_pending(&l) && poll_one(&l, 213, &h) == 1 && h.seq == 0x0001,
          "after the resync the pending messages go out again at once");
}

static void output_set_payload(uint8_t *p, uint8_t output, uint32_t value, uint32_t fail,
                               uint32_t lease_ms)
{
    p[0] = output;
    p[1] = RSB_KIND_I32;
    rsb_put_u32(&p[2], value);
    p[6] = RSB_KIND_I32;
    rsb_put_u32(&p[7], fail);
    rsb_put_u32(&p[11], lease_ms);
}

static void test_outputs(void)
{
    rsb_output_t outs[2];
    uint8_t cmd[RSB_OUTPUT_SET_LEN];
    uint8_t answer[RSB_OUTPUT_STATE_LEN];
    rsb_output_init(&outs[0], RSB_KIND_I32, 0u);
    rsb_output_init(&outs[1], RSB_KIND_I32, 0u);
    CHECK(outs[0].value == 0u && outs[0].lease_ms == 0u, "outputs power up at fail-safe");
    output_set_payload(cmd, 1, 1u, 7u, 1000u);
    CHECK(rsb_payload_check(RSB_OUTPUT_SET, cmd, sizeof cmd) == RSB_OK, "output set checks");
    CHECK(rsb_output_set(outs, 2, cmd, 0xFFFFFF00u, answer) == RSB_OUTPUT_OK, "set ok");
    CHECK(outs[1].value == 1u && outs[1].changed && outs[0].value == 0u, "value applied");
    CHECK(answer[0] == 1u && answer[1] == RSB_OUTPUT_OK && rsb_get_u32(&answer[3]) == 1u &&
              rsb_get_u32(&answer[7]) == 1000u,
          "OUTPUT_STATE answer");
    CHECK(rsb_payload_check(RSB_OUTPUT_STATE, answer, sizeof answer) == RSB_OK, "answer checks");
    /* the lease spans the clock's wrap */
    CHECK(rsb_output_poll(outs, 2, 0xFFFFFF00u + 999u) == 0u && outs[1].value == 1u,
          "lease still running");
    CHECK(rsb_output_poll(outs, 2, 0xFFFFFF00u + 1000u) == 1u && outs[1].value == 7u,
          "lease ran out: fail-safe applied");
    CHECK(rsb_output_poll(outs, 2, 0xFFFFFF00u + 5000u) == 0u, "falls back once");
    output_set_payload(cmd, 1, 3u, 0u, 0u);
    rsb_output_set(outs, 2, cmd, 10u, answer);
    CHECK(rsb_output_poll(outs, 2, 1000000u) == 0u && outs[1].value == 3u, "no lease: holds");
    output_set_payload(cmd, 5, 1u, 0u, 0u);
    CHECK(rsb_output_set(outs, 2, cmd, 0u, answer) == RSB_OUTPUT_UNKNOWN &&
              answer[1] == RSB_OUTPUT_UNKNOWN && answer[0] == 5u,
          "unknown output refused");
    CHECK(rsb_payload_check(RSB_OUTPUT_SET, cmd, sizeof cmd - 1u) == RSB_ERR_PAYLOAD,
          "short output set refused");
    cmd[6] = 9u;
    CHECK(rsb_payload_check(RSB_OUTPUT_SET, cmd, sizeof cmd) == RSB_ERR_PAYLOAD,
          "bad fail-safe kind refused");
}

int main(void)
{
    test_crc();
    test_cobs();
    test_frames();
    test_malformed();
    test_deframer();
    test_reading_builder();
    test_link();
    test_outputs();
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
