/*
 * RSB v1 framing for microcontrollers: COBS, CRC-16/CCITT-FALSE, frame build/parse,
 * a byte-at-a-time deframer and READING payload helpers.
 *
 * Portable C99: no heap, no libc beyond <stdint.h> / <stddef.h>. Every function works on
 * caller-provided buffers and returns a status (RSB_OK or a negative RSB_ERR_*).
 * Normative description: ../SPEC.md.
 */
#ifndef RSB_FRAME_H
#define RSB_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define RSB_VERSION 1u
#define RSB_HEADER_LEN 6u
#define RSB_CRC_LEN 2u
#define RSB_MAX_PAYLOAD 240u
#define RSB_MAX_RAW (RSB_HEADER_LEN + RSB_MAX_PAYLOAD + RSB_CRC_LEN) /* 248 */
#define RSB_MAX_ENCODED (RSB_MAX_RAW + 1u + RSB_MAX_RAW / 254u)      /* 249 */
#define RSB_MAX_WIRE (RSB_MAX_ENCODED + 2u) /* with leading and trailing 0x00 */

#define RSB_CRC_INIT 0xFFFFu
#define RSB_CRC_CHECK 0x29B1u /* CRC of "123456789" */

#define RSB_FLAG_ACK_REQ 0x01u
#define RSB_FLAG_RETRANSMIT 0x02u

#define RSB_HELLO 0x01u
#define RSB_READING 0x02u
#define RSB_LOG 0x03u
#define RSB_ACK 0x10u
#define RSB_NACK 0x11u
#define RSB_PING 0x20u
#define RSB_PONG 0x21u
#define RSB_CONFIG_GET 0x30u
#define RSB_CONFIG_SET 0x31u
#define RSB_CONFIG_VALUE 0x32u
#define RSB_OUTPUT_SET 0x40u   /* output u8, value (kind u8 + 4), fail_safe (kind u8 + 4), lease_ms u32 */
#define RSB_OUTPUT_STATE 0x41u /* output u8, status u8, value (kind u8 + 4), lease_ms u32 */

#define RSB_OUTPUT_OK 0u
#define RSB_OUTPUT_UNKNOWN 1u
#define RSB_OUTPUT_BAD_VALUE 2u
#define RSB_OUTPUT_SET_LEN 15u
#define RSB_OUTPUT_STATE_LEN 11u

#define RSB_KIND_F32 1u
#define RSB_KIND_I32 2u
#define RSB_KIND_I32_CENTI 3u
#define RSB_KIND_I32_MILLI 4u

#define RSB_MAX_VALUES 39u

enum {
    RSB_OK = 0,
    RSB_ERR_COBS = -1,    /* invalid COBS encoding */
    RSB_ERR_LENGTH = -2,  /* frame too short or too long */
    RSB_ERR_CRC = -3,     /* CRC mismatch */
    RSB_ERR_VERSION = -4, /* unsupported protocol version */
    RSB_ERR_TYPE = -5,    /* unknown message type */
    RSB_ERR_PAYLOAD = -6, /* payload length or field invalid for its type */
    RSB_ERR_SPACE = -7    /* output buffer too small / argument out of range */
};

typedef struct {
    uint8_t version;
    uint8_t type;
    uint8_t flags;
    uint8_t node;
    uint16_t seq;
} rsb_header_t;

/* CRC-16/CCITT-FALSE; start with crc = RSB_CRC_INIT, may be chained. */
uint16_t rsb_crc16(const uint8_t *data, size_t len, uint16_t crc);

/* COBS-encode len bytes; writes at most cap bytes (no delimiter). */
int rsb_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);
/* COBS-decode one frame (no delimiter). */
int rsb_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* Build a wire frame: COBS(header|payload|crc) followed by 0x00. h->version is ignored
 * (RSB_VERSION is written). cap of RSB_MAX_ENCODED + 1 is always enough. */
int rsb_frame_build(const rsb_header_t *h, const uint8_t *payload, size_t payload_len,
                    uint8_t *out, size_t cap, size_t *out_len);

/* Parse one wire frame (a trailing 0x00 is accepted). Checks COBS, length, CRC, version
 * and, with rsb_payload_check, the type and payload. payload needs RSB_MAX_PAYLOAD bytes. */
int rsb_frame_parse(const uint8_t *frame, size_t len, rsb_header_t *h, uint8_t *payload,
                    size_t cap, size_t *payload_len);

/* Validate a payload against its message type (lengths, counts, kinds, levels). */
int rsb_payload_check(uint8_t type, const uint8_t *payload, size_t len);

/* Byte-at-a-time receiver. rsb_deframer_push returns 1 when a complete non-empty frame
 * (without delimiter) is available in *frame / *len until the next push, 0 otherwise,
 * RSB_ERR_LENGTH when an oversize frame was dropped (the rest is skipped up to 0x00). */
typedef struct {
    uint8_t buf[RSB_MAX_ENCODED];
    size_t len;
    uint8_t skipping;
    uint8_t ready;
} rsb_deframer_t;

void rsb_deframer_init(rsb_deframer_t *d);
int rsb_deframer_push(rsb_deframer_t *d, uint8_t byte, const uint8_t **frame, size_t *len);

/* Little-endian helpers. */
void rsb_put_u16(uint8_t *p, uint16_t v);
void rsb_put_u32(uint8_t *p, uint32_t v);
uint16_t rsb_get_u16(const uint8_t *p);
uint32_t rsb_get_u32(const uint8_t *p);
uint32_t rsb_f32_bits(float v);
float rsb_f32_from_bits(uint32_t bits);

/* READING payload builder: init writes uptime and count 0; add appends one value. */
size_t rsb_reading_init(uint8_t *payload, uint32_t uptime_ms);
int rsb_reading_add_f32(uint8_t *payload, size_t *len, uint8_t channel, float value);
int rsb_reading_add_i32(uint8_t *payload, size_t *len, uint8_t channel, uint8_t kind,
                        int32_t value);

#endif
