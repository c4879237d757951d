/* RSB v1 board outputs: see rsb_output.h. */
#include "rsb_output.h"

void rsb_output_init(rsb_output_t *o, uint8_t kind, uint32_t fail_safe)
{
    o->kind = kind;
    o->value = fail_safe;
    o->fail_kind = kind;
    o->fail_safe = fail_safe;
    o->lease_ms = 0;
    o->set_ms = 0;
    o->changed = 0;
}

static void answer_state(uint8_t *answer, uint8_t output, uint8_t status, uint8_t kind,
                         uint32_t value, uint32_t lease_ms)
{
    answer[0] = output;
    answer[1] = status;
    answer[2] = kind;
    rsb_put_u32(&answer[3], value);
    rsb_put_u32(&answer[7], lease_ms);
}

uint8_t rsb_output_set(rsb_output_t *outputs, size_t count, const uint8_t *payload,
                       uint32_t now_ms, uint8_t *answer)
{
    uint8_t index = payload[0];
    rsb_output_t *o;
    uint32_t value = rsb_get_u32(&payload[2]);
    if ((size_t)index >= count) {
        answer_state(answer, index, RSB_OUTPUT_UNKNOWN, RSB_KIND_I32, 0u, 0u);
        return RSB_OUTPUT_UNKNOWN;
    }
    o = &outputs[index];
    if (o->kind != payload[1] || o->value != value) {
        o->changed = 1;
    }
    o->kind = payload[1];
    o->value = value;
    o->fail_kind = payload[6];
    o->fail_safe = rsb_get_u32(&payload[7]);
    o->lease_ms = rsb_get_u32(&payload[11]);
    o->set_ms = now_ms;
    answer_state(answer, index, RSB_OUTPUT_OK, o->kind, o->value, o->lease_ms);
    return RSB_OUTPUT_OK;
}

size_t rsb_output_poll(rsb_output_t *outputs, size_t count, uint32_t now_ms)
{
    size_t i;
    size_t fell = 0;
    for (i = 0; i < count; i++) {
        rsb_output_t *o = &outputs[i];
        if (o->lease_ms != 0u && now_ms - o->set_ms >= o->lease_ms) {
            if (o->kind != o->fail_kind || o->value != o->fail_safe) {
                o->changed = 1;
            }
            o->kind = o->fail_kind;
            o->value = o->fail_safe;
            o->lease_ms = 0;
            fell++;
        }
    }
    return fell;
}
