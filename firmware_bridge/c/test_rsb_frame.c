/* Host unit tests of rsb_frame.c against the shared vectors (vectors.h). */
#include <stdio.h>

#include "rsb_frame.h"
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

int main(void)
{
    test_crc();
    test_cobs();
    test_frames();
    test_malformed();
    test_deframer();
    test_reading_builder();
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
