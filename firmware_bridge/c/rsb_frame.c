/* RSB v1 framing reference implementation (see rsb_frame.h and ../SPEC.md). */
#include "rsb_frame.h"

uint16_t rsb_crc16(const uint8_t *data, size_t len, uint16_t crc)
{
    size_t i;
    int bit;
    for (i = 0; i < len; i++) {
        crc = (uint16_t)(crc ^ ((uint16_t)data[i] << 8));
        for (bit = 0; bit < 8; bit++) {
            if (crc & 0x8000u) {
                crc = (uint16_t)((crc << 1) ^ 0x1021u);
            } else {
                crc = (uint16_t)(crc << 1);
            }
        }
    }
    return crc;
}

int rsb_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t code_at = 0;
    size_t o = 1;
    uint8_t code = 1;
    size_t i;
    if (cap < 1) {
        return RSB_ERR_SPACE;
    }
    for (i = 0; i < len; i++) {
        if (in[i] == 0) {
            out[code_at] = code;
            if (o >= cap) {
                return RSB_ERR_SPACE;
            }
            code_at = o++;
            code = 1;
            continue;
        }
        if (o >= cap) {
            return RSB_ERR_SPACE;
        }
        out[o++] = in[i];
        code++;
        if (code == 0xFFu && i + 1 < len) {
            out[code_at] = code;
            if (o >= cap) {
                return RSB_ERR_SPACE;
            }
            code_at = o++;
            code = 1;
        }
    }
    out[code_at] = code;
    *out_len = o;
    return RSB_OK;
}

int rsb_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t i = 0;
    size_t o = 0;
    if (len == 0) {
        return RSB_ERR_COBS;
    }
    while (i < len) {
        uint8_t code = in[i];
        size_t end;
        size_t j;
        if (code == 0) {
            return RSB_ERR_COBS;
        }
        end = i + code;
        if (end > len) {
            return RSB_ERR_COBS;
        }
        for (j = i + 1; j < end; j++) {
            if (in[j] == 0) {
                return RSB_ERR_COBS;
            }
            if (o >= cap) {
                return RSB_ERR_SPACE;
            }
            out[o++] = in[j];
        }
        i = end;
        if (code != 0xFFu && i < len) {
            if (o >= cap) {
                return RSB_ERR_SPACE;
            }
            out[o++] = 0;
        }
    }
    *out_len = o;
    return RSB_OK;
}

void rsb_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

void rsb_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

uint16_t rsb_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | ((uint16_t)p[1] << 8));
}

uint32_t rsb_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

uint32_t rsb_f32_bits(float v)
{
    union {
        float f;
        uint32_t u;
    } pun;
    pun.f = v;
    return pun.u;
}

float rsb_f32_from_bits(uint32_t bits)
{
    union {
        float f;
        uint32_t u;
    } pun;
    pun.u = bits;
    return pun.f;
}

int rsb_frame_build(const rsb_header_t *h, const uint8_t *payload, size_t payload_len,
                    uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t raw[RSB_MAX_RAW];
    size_t n = 0;
    size_t i;
    size_t enc_len = 0;
    uint16_t crc;
    int rc;
    if (payload_len > RSB_MAX_PAYLOAD) {
        return RSB_ERR_SPACE;
    }
    raw[n++] = RSB_VERSION;
    raw[n++] = h->type;
    raw[n++] = h->flags;
    raw[n++] = h->node;
    rsb_put_u16(&raw[n], h->seq);
    n += 2;
    for (i = 0; i < payload_len; i++) {
        raw[n++] = payload[i];
    }
    crc = rsb_crc16(raw, n, RSB_CRC_INIT);
    rsb_put_u16(&raw[n], crc);
    n += 2;
    if (cap < 1) {
        return RSB_ERR_SPACE;
    }
    rc = rsb_cobs_encode(raw, n, out, cap - 1, &enc_len);
    if (rc != RSB_OK) {
        return rc;
    }
    out[enc_len] = 0;
    *out_len = enc_len + 1;
    return RSB_OK;
}

int rsb_frame_parse(const uint8_t *frame, size_t len, rsb_header_t *h, uint8_t *payload,
                    size_t cap, size_t *payload_len)
{
    uint8_t raw[RSB_MAX_RAW];
    size_t n = 0;
    size_t plen;
    size_t i;
    int rc;
    if (len > 0 && frame[len - 1] == 0) {
        len--;
    }
    if (len > RSB_MAX_ENCODED) {
        return RSB_ERR_LENGTH;
    }
    rc = rsb_cobs_decode(frame, len, raw, sizeof raw, &n);
    if (rc == RSB_ERR_SPACE) {
        return RSB_ERR_LENGTH;
    }
    if (rc != RSB_OK) {
        return rc;
    }
    if (n < RSB_HEADER_LEN + RSB_CRC_LEN) {
        return RSB_ERR_LENGTH;
    }
    if (rsb_crc16(raw, n - RSB_CRC_LEN, RSB_CRC_INIT) != rsb_get_u16(&raw[n - RSB_CRC_LEN])) {
        return RSB_ERR_CRC;
    }
    h->version = raw[0];
    h->type = raw[1];
    h->flags = raw[2];
    h->node = raw[3];
    h->seq = rsb_get_u16(&raw[4]);
    if (h->version != RSB_VERSION) {
        return RSB_ERR_VERSION;
    }
    plen = n - RSB_HEADER_LEN - RSB_CRC_LEN;
    if (plen > cap) {
        return RSB_ERR_SPACE;
    }
    for (i = 0; i < plen; i++) {
        payload[i] = raw[RSB_HEADER_LEN + i];
    }
    *payload_len = plen;
    return rsb_payload_check(h->type, payload, plen);
}

static int kind_ok(uint8_t kind)
{
    return kind >= RSB_KIND_F32 && kind <= RSB_KIND_I32_MILLI;
}

static int exact(size_t len, size_t want)
{
    return len == want ? RSB_OK : RSB_ERR_PAYLOAD;
}

int rsb_payload_check(uint8_t type, const uint8_t *payload, size_t len)
{
    size_t count;
    size_t i;
    switch (type) {
    case RSB_HELLO:
        return (len >= 9u && len <= 41u) ? RSB_OK : RSB_ERR_PAYLOAD;
    case RSB_READING:
        if (len < 5u) {
            return RSB_ERR_PAYLOAD;
        }
        count = payload[4];
        if (count < 1u || count > RSB_MAX_VALUES || len != 5u + 6u * count) {
            return RSB_ERR_PAYLOAD;
        }
        for (i = 0; i < count; i++) {
            if (!kind_ok(payload[5u + 6u * i + 1u])) {
                return RSB_ERR_PAYLOAD;
            }
        }
        return RSB_OK;
    case RSB_LOG:
        return (len >= 1u && len <= 201u && payload[0] <= 3u) ? RSB_OK : RSB_ERR_PAYLOAD;
    case RSB_ACK:
        return exact(len, 2u);
    case RSB_NACK:
        return exact(len, 3u);
    case RSB_PING:
        return exact(len, 4u);
    case RSB_PONG:
        return exact(len, 8u);
    case RSB_CONFIG_GET:
        return exact(len, 1u);
    case RSB_CONFIG_SET:
        return (len == 6u && kind_ok(payload[1])) ? RSB_OK : RSB_ERR_PAYLOAD;
    case RSB_CONFIG_VALUE:
        return (len == 7u && kind_ok(payload[2])) ? RSB_OK : RSB_ERR_PAYLOAD;
    case RSB_OUTPUT_SET:
        return (len == RSB_OUTPUT_SET_LEN && kind_ok(payload[1]) && kind_ok(payload[6]))
                   ? RSB_OK
                   : RSB_ERR_PAYLOAD;
    case RSB_OUTPUT_STATE:
        return (len == RSB_OUTPUT_STATE_LEN && kind_ok(payload[2])) ? RSB_OK : RSB_ERR_PAYLOAD;
    default:
        return RSB_ERR_TYPE;
    }
}

void rsb_deframer_init(rsb_deframer_t *d)
{
    d->len = 0;
    d->skipping = 0;
    d->ready = 0;
}

int rsb_deframer_push(rsb_deframer_t *d, uint8_t byte, const uint8_t **frame, size_t *len)
{
    if (d->ready) { /* the previous frame has been handed out: start a new one */
        d->ready = 0;
        d->len = 0;
    }
    if (byte == 0) {
        if (d->skipping) {
            d->skipping = 0;
            return 0;
        }
        if (d->len == 0) {
            return 0; /* empty frame: ignored */
        }
        d->ready = 1;
        *frame = d->buf;
        *len = d->len;
        return 1;
    }
    if (d->skipping) {
        return 0;
    }
    if (d->len >= sizeof d->buf) {
        d->len = 0;
        d->skipping = 1;
        return RSB_ERR_LENGTH;
    }
    d->buf[d->len++] = byte;
    return 0;
}

size_t rsb_reading_init(uint8_t *payload, uint32_t uptime_ms)
{
    rsb_put_u32(payload, uptime_ms);
    payload[4] = 0;
    return 5u;
}

int rsb_reading_add_i32(uint8_t *payload, size_t *len, uint8_t channel, uint8_t kind,
                        int32_t value)
{
    if (payload[4] >= RSB_MAX_VALUES || !kind_ok(kind) || kind == RSB_KIND_F32) {
        return RSB_ERR_SPACE;
    }
    payload[*len] = channel;
    payload[*len + 1u] = kind;
    rsb_put_u32(&payload[*len + 2u], (uint32_t)value);
    *len += 6u;
    payload[4]++;
    return RSB_OK;
}

int rsb_reading_add_f32(uint8_t *payload, size_t *len, uint8_t channel, float value)
{
    if (payload[4] >= RSB_MAX_VALUES) {
        return RSB_ERR_SPACE;
    }
    payload[*len] = channel;
    payload[*len + 1u] = RSB_KIND_F32;
    rsb_put_u32(&payload[*len + 2u], rsb_f32_bits(value));
    *len += 6u;
    payload[4]++;
    return RSB_OK;
}
