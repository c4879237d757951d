/*
 * RSB v1 board outputs (SPEC.md section 5, "Outputs"): OUTPUT_SET with a fail-safe value
 * and a lease, answered by OUTPUT_STATE. The board keeps one rsb_output_t per output,
 * passes each checked OUTPUT_SET payload to rsb_output_set and calls rsb_output_poll from
 * its main loop: an output whose lease ran out takes its fail-safe value by itself.
 *
 * Portable C99, no heap, no libc beyond <stdint.h> / <stddef.h>. Values are kept as their
 * kind and 4 raw bytes (the wire form); the board maps them onto its hardware.
 */
#ifndef RSB_OUTPUT_H
#define RSB_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "rsb_frame.h"

typedef struct {
    uint8_t kind;       /* RSB_KIND_* of value */
    uint32_t value;     /* raw little-endian value bytes as a u32 */
    uint8_t fail_kind;  /* RSB_KIND_* of fail_safe */
    uint32_t fail_safe; /* raw fail-safe value */
    uint32_t lease_ms;  /* 0: no lease running */
    uint32_t set_ms;    /* clock of the last OUTPUT_SET */
    uint8_t changed;    /* set when value changed (the caller clears it after driving) */
} rsb_output_t;

/* Power-up: the output at its fail-safe value (kind, raw), no lease. */
void rsb_output_init(rsb_output_t *o, uint8_t kind, uint32_t fail_safe);

/* Apply one OUTPUT_SET payload (checked with rsb_payload_check) to outputs[0..count) at
 * now_ms and write the OUTPUT_STATE answer (RSB_OUTPUT_STATE_LEN bytes) to answer.
 * Returns the answer's status (RSB_OUTPUT_OK or RSB_OUTPUT_UNKNOWN). */
uint8_t rsb_output_set(rsb_output_t *outputs, size_t count, const uint8_t *payload,
                       uint32_t now_ms, uint8_t *answer);

/* Apply the fail-safe value of every output whose lease ran out by now_ms (wrap-safe).
 * Returns how many fell back. */
size_t rsb_output_poll(rsb_output_t *outputs, size_t count, uint32_t now_ms);

#endif
