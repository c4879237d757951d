/*
 * RSB v1 board-side reliability (SPEC.md section 6): sequence numbers, a bounded
 * retransmit queue, the in-flight window, cumulative ACKs and the HELLO handshake/resync.
 *
 * Portable C99, no heap, no libc beyond <stdint.h> / <stddef.h>. The caller supplies a
 * millisecond clock value to rsb_link_poll and sends the frames it returns.
 */
#ifndef RSB_LINK_H
#define RSB_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "rsb_frame.h"

#ifndef RSB_LINK_QUEUE
#define RSB_LINK_QUEUE 16u /* reliable messages kept until ACKed */
#endif
#ifndef RSB_LINK_PAYLOAD
#define RSB_LINK_PAYLOAD 64u /* largest queued payload (a 9-value READING is 59) */
#endif
#define RSB_LINK_WINDOW 8u
#define RSB_HELLO_MAX 41u

typedef struct {
    uint16_t seq;
    uint8_t type;
    uint8_t len;
    uint8_t tries;
    uint8_t due_now;
    uint32_t sent_ms;
    uint8_t payload[RSB_LINK_PAYLOAD];
} rsb_pending_t;

typedef struct {
    uint8_t node;
    uint32_t rto_ms;
    uint16_t next_seq;
    uint8_t hello[RSB_HELLO_MAX];
    uint8_t hello_len;
    uint8_t hello_pending;
    uint8_t hello_tries;
    uint16_t hello_seq;
    uint32_t hello_sent_ms;
    rsb_pending_t queue[RSB_LINK_QUEUE];
    uint8_t head;
    uint8_t count;
    uint32_t retransmits;
    uint32_t stale_acks;
} rsb_link_t;

/* Start a session: hello_payload is a HELLO payload (rsb_hello_payload builds one). */
void rsb_link_init(rsb_link_t *l, uint8_t node, uint16_t first_seq, const uint8_t *hello_payload,
                   size_t hello_len, uint32_t rto_ms);

/* Build a HELLO payload into out (RSB_HELLO_MAX bytes); name may be 0. Returns its length. */
size_t rsb_hello_payload(uint8_t *out, uint8_t major, uint8_t minor, uint8_t patch,
                         uint16_t boot_id, uint32_t capabilities, const char *name);

/* Queue a reliable message; RSB_ERR_SPACE when the queue is full or the payload too long. */
int rsb_link_offer(rsb_link_t *l, uint8_t type, const uint8_t *payload, size_t len);

/* Write the next frame due at now_ms (with a leading 0x00) into out; returns 1 when a frame
 * was written, 0 when nothing is due. Call until it returns 0. cap >= RSB_MAX_WIRE. */
int rsb_link_poll(rsb_link_t *l, uint32_t now_ms, uint8_t *out, size_t cap, size_t *out_len);

/* Give the link a parsed message from the host. Returns 1 for ACK / NACK (consumed),
 * 0 for anything else (requests the application answers). */
int rsb_link_on_message(rsb_link_t *l, const rsb_header_t *h, const uint8_t *payload,
                        size_t len);

/* Messages kept until ACKed, and whether the HELLO still waits for its ACK. */
uint8_t rsb_link_pending(const rsb_link_t *l);
int rsb_link_hello_pending(const rsb_link_t *l);

#endif
