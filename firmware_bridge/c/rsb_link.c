/* RSB v1 board-side reliability (see rsb_link.h and ../SPEC.md section 6). */
#include "rsb_link.h"

#define SEQ_HALF 0x8000u

static uint16_t seq_diff(uint16_t a, uint16_t b)
{
    return (uint16_t)(a - b);
}

static rsb_pending_t *entry(rsb_link_t *l, uint8_t i)
{
    return &l->queue[(uint8_t)((l->head + i) % RSB_LINK_QUEUE)];
}

static uint16_t base_seq(rsb_link_t *l)
{
    return l->count ? entry(l, 0)->seq : l->next_seq;
}

void rsb_link_init(rsb_link_t *l, uint8_t node, uint16_t first_seq, const uint8_t *hello_payload,
                   size_t hello_len, uint32_t rto_ms)
{
    size_t i;
    l->node = node;
    l->rto_ms = rto_ms;
    l->next_seq = first_seq;
    l->hello_len = (uint8_t)(hello_len > RSB_HELLO_MAX ? RSB_HELLO_MAX : hello_len);
    for (i = 0; i < l->hello_len; i++) {
        l->hello[i] = hello_payload[i];
    }
    l->hello_pending = 1;
    l->hello_tries = 0;
    l->hello_seq = (uint16_t)(first_seq - 1u);
    l->hello_sent_ms = 0;
    l->head = 0;
    l->count = 0;
    l->retransmits = 0;
    l->stale_acks = 0;
}

size_t rsb_hello_payload(uint8_t *out, uint8_t major, uint8_t minor, uint8_t patch,
                         uint16_t boot_id, uint32_t capabilities, const char *name)
{
    size_t n = 9;
    out[0] = major;
    out[1] = minor;
    out[2] = patch;
    rsb_put_u16(&out[3], boot_id);
    rsb_put_u32(&out[5], capabilities);
    while (name && *name && n < RSB_HELLO_MAX) {
        out[n++] = (uint8_t)*name++;
    }
    return n;
}

int rsb_link_offer(rsb_link_t *l, uint8_t type, const uint8_t *payload, size_t len)
{
    rsb_pending_t *p;
    size_t i;
    if (l->count >= RSB_LINK_QUEUE || len > RSB_LINK_PAYLOAD) {
        return RSB_ERR_SPACE;
    }
    p = entry(l, l->count);
    p->seq = l->next_seq;
    p->type = type;
    p->len = (uint8_t)len;
    p->tries = 0;
    p->due_now = 0;
    p->sent_ms = 0;
    for (i = 0; i < len; i++) {
        p->payload[i] = payload[i];
    }
    l->next_seq++;
    l->count++;
    return RSB_OK;
}

static int emit(const rsb_link_t *l, uint8_t type, uint16_t seq, uint8_t flags,
                const uint8_t *payload, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    rsb_header_t h;
    size_t n = 0;
    int rc;
    if (cap < 2) {
        return RSB_ERR_SPACE;
    }
    h.version = RSB_VERSION;
    h.type = type;
    h.flags = flags;
    h.node = l->node;
    h.seq = seq;
    out[0] = 0; /* leading delimiter: noise before the frame becomes its own bad frame */
    rc = rsb_frame_build(&h, payload, len, out + 1, cap - 1, &n);
    if (rc != RSB_OK) {
        return rc;
    }
    *out_len = n + 1;
    return 1;
}

static int due(uint8_t tries, uint8_t due_now, uint32_t sent_ms, uint32_t now_ms, uint32_t rto)
{
    return tries == 0 || due_now || (uint32_t)(now_ms - sent_ms) >= rto;
}

int rsb_link_poll(rsb_link_t *l, uint32_t now_ms, uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t i;
    if (l->hello_pending) {
        uint8_t flags = RSB_FLAG_ACK_REQ;
        if (!due(l->hello_tries, 0, l->hello_sent_ms, now_ms, l->rto_ms)) {
            return 0;
        }
        l->hello_seq = (uint16_t)(base_seq(l) - 1u);
        if (l->hello_tries) {
            flags |= RSB_FLAG_RETRANSMIT;
            l->retransmits++;
        }
        if (l->hello_tries < 255u) {
            l->hello_tries++;
        }
        l->hello_sent_ms = now_ms;
        return emit(l, RSB_HELLO, l->hello_seq, flags, l->hello, l->hello_len, out, cap,
                    out_len);
    }
    for (i = 0; i < l->count; i++) {
        rsb_pending_t *p = entry(l, i);
        uint8_t flags = RSB_FLAG_ACK_REQ;
        if (seq_diff(p->seq, base_seq(l)) >= RSB_LINK_WINDOW) {
            break;
        }
        if (!due(p->tries, p->due_now, p->sent_ms, now_ms, l->rto_ms)) {
            continue;
        }
        if (p->tries) {
            flags |= RSB_FLAG_RETRANSMIT;
            l->retransmits++;
        }
        if (p->tries < 255u) {
            p->tries++;
        }
        p->due_now = 0;
        p->sent_ms = now_ms;
        return emit(l, p->type, p->seq, flags, p->payload, p->len, out, cap, out_len);
    }
    return 0;
}

static void on_ack(rsb_link_t *l, uint16_t ack)
{
    uint16_t base = base_seq(l);
    int removed = 0;
    uint8_t i;
    if (l->hello_pending) {
        /* accepted only while the HELLO still names the seq just before the base */
        if (l->hello_tries && ack == l->hello_seq && ack == (uint16_t)(base - 1u)) {
            l->hello_pending = 0;
            for (i = 0; i < l->count; i++) {
                entry(l, i)->due_now = 1;
            }
            return;
        }
    }
    if (seq_diff(ack, base) >= RSB_LINK_WINDOW) {
        l->stale_acks++;
        return;
    }
    while (l->count && entry(l, 0)->tries && seq_diff(ack, entry(l, 0)->seq) < SEQ_HALF) {
        l->head = (uint8_t)((l->head + 1u) % RSB_LINK_QUEUE);
        l->count--;
        removed = 1;
    }
    if (!removed) {
        l->stale_acks++;
    }
}

int rsb_link_on_message(rsb_link_t *l, const rsb_header_t *h, const uint8_t *payload,
                        size_t len)
{
    if (h->node != l->node) {
        return 0;
    }
    if (h->type == RSB_ACK && len == 2u) {
        on_ack(l, rsb_get_u16(payload));
        return 1;
    }
    if (h->type == RSB_NACK && len == 3u) {
        uint8_t reason = payload[2];
        if ((reason == 1u || reason == 2u) && !l->hello_pending) {
            l->hello_pending = 1; /* resync: HELLO again from the oldest pending seq */
            l->hello_tries = 0;
        }
        return 1;
    }
    return 0;
}

uint8_t rsb_link_pending(const rsb_link_t *l)
{
    return l->count;
}

int rsb_link_hello_pending(const rsb_link_t *l)
{
    return l->hello_pending;
}
