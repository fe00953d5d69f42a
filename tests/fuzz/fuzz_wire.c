/*
 * fuzz_wire.c - libFuzzer target for the wire-format v1 parser and encoder.
 *
 * Not part of `make`; build and run by hand from the source tree:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -DHAVE_CONFIG_H -I/tmp/b-bus \
 *     -Ilibhcpg -Ilibhcpg/include tests/fuzz/fuzz_wire.c libhcpg/wire.c libhcpg/alloc.c libhcpg/error.c \
 *     -o /tmp/fuzz_wire && /tmp/fuzz_wire -max_total_time=60 -max_len=9000
 * (any configured build dir works for -I: only config.h is needed).
 *
 * Properties: parsing never crashes or overreads, whatever the bytes; a parsed
 * message re-encodes into payloads that parse back to the same message.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

typedef struct check_ctx {
    const hc_wire_msg *want;
    size_t next;
} check_ctx;

static hc_status check_payload(void *ctx, const char *payload, size_t len)
{
    check_ctx *c = ctx;
    hc_wire_msg m;
    if (hc_wire_parse(payload, len, &m, NULL) != HC_OK) abort();
    if (strcmp(m.origin, c->want->origin) != 0 || m.op != c->want->op) abort();
    for (size_t i = 0; i < m.nargs; i++, c->next++) {
        if (c->next >= c->want->nargs) abort();
        if (m.arg_len[i] != c->want->arg_len[c->next]) abort();
        if (memcmp(m.args[i], c->want->args[c->next], m.arg_len[i]) != 0) abort();
    }
    hc_wire_msg_clear(&m);
    return HC_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hc_wire_msg m;
    if (hc_wire_parse((const char *)data, size, &m, NULL) != HC_OK) return 0;
    /* Re-encode unless an arg holds NUL (the encoder takes C strings). */
    for (size_t i = 0; i < m.nargs; i++)
        if (strlen(m.args[i]) != m.arg_len[i]) goto done;
    check_ctx c = {&m, 0};
    if (hc_wire_encode(m.origin, m.op, (const char *const *)m.args, m.nargs, check_payload, &c,
                       NULL) != HC_OK)
        abort();
    if (c.next != m.nargs) abort();
done:
    hc_wire_msg_clear(&m);
    return 0;
}
