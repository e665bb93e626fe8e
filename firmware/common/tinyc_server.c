/*
 * tinyc protocol server: the board side of tinyc/link.py (frame format in
 * tinyc_protocol.h). Shared by every target; the platform gives bytes in/out, a
 * counter, stack measurement and an exit (tinyc_port_* / tinyc_counter_* / tinyc_stack_*).
 *
 * Payloads (little-endian), protocol v2:
 *   HELLO reply  u8 proto, u8 cycle_source, u16 num_layers, char model_hash[16],
 *                u32 input_bytes_total, u32 output_bytes_total, u32 arena_bytes,
 *                u32 cycle_hz, u8 num_inputs, u8 num_outputs, u16 meta_len,
 *                u32 input_bytes[num_inputs], u32 output_bytes[num_outputs],
 *                meta (meta_len bytes of JSON: board, tinyc version, tensor names/shapes)
 *   RESULT       i32 status, u64 ticks, u16 num_layer_ticks, u16 0, u32 request_crc,
 *                u32 stack_bytes (TINYC_STACK_UNKNOWN: not measured), u32 infer_count,
 *                u32 layer_ticks[num_layer_ticks], output bytes (all outputs in order)
 *   ERROR        u16 code, u16 0, u32 detail, u32 request_crc, ASCII message
 * request_crc is the CRC field of the request frame answered (0: none), so the host can
 * tell a late reply from the current one even when the 8-bit seq has wrapped.
 */
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "tinyc_build_info.h"
#include "tinyc_protocol.h"

/* One INFER frame, COBS-encoded: header + inputs + CRC, plus one code byte per 254. */
#define RX_DECODED_MAX (TINYC_FRAME_HEADER + TINYC_INPUT_BYTES_TOTAL + TINYC_FRAME_CRC)
#define RX_ENCODED_MAX (RX_DECODED_MAX + RX_DECODED_MAX / 254u + 2u)

static union {
    uint64_t align; /* the payload (inputs) starts at offset 8: aligned for any type */
    uint8_t b[RX_ENCODED_MAX];
} rx;

static union {
    uint64_t align;
    uint8_t b[TINYC_OUTPUT_BYTES_TOTAL];
} out_buf;

static const uint32_t input_bytes[TINYC_NUM_INPUTS] = { TINYC_INPUT_BYTES_LIST };
static const uint32_t output_bytes[TINYC_NUM_OUTPUTS] = { TINYC_OUTPUT_BYTES_LIST };

/* ---- CRC-32, 16-entry table: small in flash, 2 lookups per byte ---- */

static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu
};

uint32_t tinyc_crc32_update(uint32_t crc, const uint8_t *data, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        crc ^= data[i];
        crc = (crc >> 4) ^ crc_nibble[crc & 15u];
        crc = (crc >> 4) ^ crc_nibble[crc & 15u];
    }
    return crc;
}

/* ---- streaming COBS encoder for outgoing frames ---- */

static struct {
    uint8_t block[254]; /* non-zero bytes waiting for their code byte */
    uint32_t n;
    uint32_t crc;
    int after_full;     /* the last block emitted was a full (0xFF) one */
} tx;

static void tx_emit_block(void)
{
    uint32_t i;
    tinyc_port_putc((uint8_t)(tx.n + 1u));
    for (i = 0; i < tx.n; ++i) {
        tinyc_port_putc(tx.block[i]);
    }
    tx.after_full = (tx.n == 254u);
    tx.n = 0;
}

static void tx_raw(uint8_t byte)
{
    if (byte == 0) {
        tx_emit_block();
        tx.after_full = 0; /* this block ended with a (encoded) zero */
    } else {
        tx.block[tx.n++] = byte;
        if (tx.n == 254u) {
            tx_emit_block();
        }
    }
}

static void tx_bytes(const uint8_t *p, uint32_t n)
{
    uint32_t i;
    tx.crc = tinyc_crc32_update(tx.crc, p, n);
    for (i = 0; i < n; ++i) {
        tx_raw(p[i]);
    }
}

static void tx_u8(uint8_t v)
{
    tx_bytes(&v, 1);
}

static void tx_u16(uint16_t v)
{
    uint8_t b[2];
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    tx_bytes(b, 2);
}

static void tx_u32(uint32_t v)
{
    uint8_t b[4];
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
    tx_bytes(b, 4);
}

static void tx_begin(uint8_t type, uint8_t seq, uint32_t length)
{
    tinyc_port_putc(0); /* sync: ends whatever the host may have half-read */
    tx.n = 0;
    tx.after_full = 0;
    tx.crc = 0xFFFFFFFFu;
    tx_u8(type);
    tx_u8(seq);
    tx_u8(TINYC_PROTO_VERSION);
    tx_u8(0);
    tx_u32(length);
}

static void tx_end(void)
{
    uint32_t crc = tx.crc ^ 0xFFFFFFFFu;
    int i;
    for (i = 0; i < 4; ++i) {
        tx_raw((uint8_t)(crc >> (8 * i)));
    }
    /* the last block; after a full block at the very end there is none (COBS rule) */
    if (!(tx.n == 0 && tx.after_full)) {
        tx_emit_block();
    }
    tinyc_port_putc(0);
    tinyc_port_flush();
}

static uint32_t str_len(const char *s)
{
    uint32_t n = 0;
    while (s[n] != '\0') {
        ++n;
    }
    return n;
}

/* ---- per-layer ticks (model.c calls these when built with TINYC_LAYER_HOOKS) ---- */

static uint32_t layer_ticks[TINYC_NUM_LAYERS > 0 ? TINYC_NUM_LAYERS : 1];
/* The layer count as a variable: `i < 0u` for a model without layers would warn (type-limits). */
static const uint32_t num_layers = TINYC_NUM_LAYERS;
static uint64_t layer_start;

void tinyc_layer_begin(int layer)
{
    (void)layer;
    layer_start = tinyc_counter_read();
}

void tinyc_layer_end(int layer)
{
    uint64_t d = tinyc_counter_read() - layer_start;
    if (layer >= 0 && layer < TINYC_NUM_LAYERS) {
        layer_ticks[layer] = d > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)d;
    }
}

/* ---- frames ---- */

/* The request being served: its seq and CRC are quoted in the reply (and in a fault report). */
static uint8_t current_seq;
static uint32_t current_crc;
static uint32_t infer_count;

static void send_error(uint16_t code, uint32_t detail, const char *message)
{
    uint32_t n = str_len(message);
    tx_begin(TINYC_T_ERROR, current_seq, 12u + n);
    tx_u16(code);
    tx_u16(0);
    tx_u32(detail);
    tx_u32(current_crc);
    tx_bytes((const uint8_t *)message, n);
    tx_end();
}

static void send_hello(uint8_t seq)
{
    static const char hash[] = TINYC_MODEL_HASH;
    uint8_t h[16];
    uint32_t i;
    for (i = 0; i < 16u; ++i) {
        h[i] = (i < sizeof hash - 1u) ? (uint8_t)hash[i] : (uint8_t)' ';
    }
    tx_begin(TINYC_T_HELLO_REPLY, seq,
             40u + 4u * (TINYC_NUM_INPUTS + TINYC_NUM_OUTPUTS) + tinyc_meta_json_len);
    tx_u8(TINYC_PROTO_VERSION);
    tx_u8(TINYC_CYCLE_SOURCE);
    tx_u16(TINYC_NUM_LAYERS);
    tx_bytes(h, 16);
    tx_u32(TINYC_INPUT_BYTES_TOTAL);
    tx_u32(TINYC_OUTPUT_BYTES_TOTAL);
    tx_u32(TINYC_ARENA_BYTES);
    tx_u32(TINYC_CYCLE_HZ);
    tx_u8(TINYC_NUM_INPUTS);
    tx_u8(TINYC_NUM_OUTPUTS);
    tx_u16((uint16_t)tinyc_meta_json_len);
    for (i = 0; i < TINYC_NUM_INPUTS; ++i) {
        tx_u32(input_bytes[i]);
    }
    for (i = 0; i < TINYC_NUM_OUTPUTS; ++i) {
        tx_u32(output_bytes[i]);
    }
    tx_bytes(tinyc_meta_json, tinyc_meta_json_len);
    tx_end();
}

static void infer(const uint8_t *payload)
{
    const void *inputs[TINYC_NUM_INPUTS];
    void *outputs[TINYC_NUM_OUTPUTS];
    uint32_t off = 0;
    uint64_t t0, ticks;
    int32_t status;
    uint32_t i, stack;

    for (i = 0; i < TINYC_NUM_INPUTS; ++i) {
        inputs[i] = payload + off;
        off += input_bytes[i];
    }
    off = 0;
    for (i = 0; i < TINYC_NUM_OUTPUTS; ++i) {
        outputs[i] = out_buf.b + off;
        off += output_bytes[i];
    }
    for (i = 0; i < num_layers; ++i) {
        layer_ticks[i] = 0;
    }
    ++infer_count;
    tinyc_stack_paint(); /* outside the counted region: painting costs a few instructions per word */
    tinyc_counter_reset();
    t0 = tinyc_counter_read();
    status = (int32_t)tinyc_invoke_all(inputs, outputs);
    ticks = tinyc_counter_read() - t0;
    stack = tinyc_stack_used();
    if (status != 0) {
        send_error(TINYC_E_INVOKE, (uint32_t)status, "tinyc_invoke_all failed");
        return;
    }
    tx_begin(TINYC_T_RESULT, current_seq, 28u + 4u * TINYC_NUM_LAYERS + TINYC_OUTPUT_BYTES_TOTAL);
    tx_u32((uint32_t)status);
    tx_u32((uint32_t)ticks);
    tx_u32((uint32_t)(ticks >> 32));
    tx_u16(TINYC_NUM_LAYERS);
    tx_u16(0);
    tx_u32(current_crc);
    tx_u32(stack);
    tx_u32(infer_count);
    for (i = 0; i < num_layers; ++i) {
        tx_u32(layer_ticks[i]);
    }
    tx_bytes(out_buf.b, TINYC_OUTPUT_BYTES_TOTAL);
    tx_end();
}

/*
 * COBS-decodes rx.b[0..n) in place (the output never overtakes the input).
 * Returns the decoded length, or -1 if the encoding is broken.
 */
static int32_t cobs_decode_in_place(uint32_t n)
{
    uint32_t r = 0, w = 0;
    while (r < n) {
        uint32_t code = rx.b[r++];
        uint32_t k;
        if (code == 0 || r + code - 1u > n) {
            return -1;
        }
        for (k = 1; k < code; ++k) {
            rx.b[w++] = rx.b[r++];
        }
        if (code != 0xFFu && r < n) {
            rx.b[w++] = 0;
        }
    }
    return (int32_t)w;
}

static uint32_t rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/*
 * Waits for the next valid frame; returns its payload length, type, seq and CRC, or -1
 * when the link is gone. The payload is at rx.b + TINYC_FRAME_HEADER. A HELLO of any
 * version is accepted (its payload is empty in every version), so that a host of any
 * version learns which protocol this board speaks; other frames must be of this version.
 */
static int32_t receive_frame(uint8_t *type, uint8_t *seq, uint32_t *frame_crc)
{
    for (;;) {
        uint32_t n = 0, length, crc;
        int overflow = 0;
        int32_t m;
        int c;

        /* collect one encoded frame: everything up to the next 0x00 */
        for (;;) {
            c = tinyc_port_getc();
            if (c < 0) {
                return -1; /* link closed */
            }
            if (c == 0) {
                break;
            }
            if (n < sizeof rx.b) {
                rx.b[n++] = (uint8_t)c;
            } else {
                overflow = 1;
            }
        }
        if (n == 0 || overflow) {
            continue; /* an empty gap between syncs, or junk longer than any frame */
        }
        m = cobs_decode_in_place(n);
        if (m < (int32_t)(TINYC_FRAME_HEADER + TINYC_FRAME_CRC)) {
            continue;
        }
        length = rd_u32(rx.b + 4);
        if (length != (uint32_t)m - TINYC_FRAME_HEADER - TINYC_FRAME_CRC) {
            continue;
        }
        crc = tinyc_crc32_update(0xFFFFFFFFu, rx.b, TINYC_FRAME_HEADER + length) ^ 0xFFFFFFFFu;
        if (crc != rd_u32(rx.b + TINYC_FRAME_HEADER + length)) {
            continue; /* damaged: no reply, the host retries */
        }
        if (rx.b[2] != TINYC_PROTO_VERSION && rx.b[0] != TINYC_T_HELLO) {
            continue;
        }
        *type = rx.b[0];
        *seq = rx.b[1];
        *frame_crc = crc;
        return (int32_t)length;
    }
}


int tinyc_server_run(void)
{
    tinyc_stack_paint();
    for (;;) {
        uint8_t type, seq;
        uint32_t crc;
        int32_t length = receive_frame(&type, &seq, &crc);
        if (length < 0) {
            return 0;
        }
        current_seq = seq;
        current_crc = crc;
        switch (type) {
        case TINYC_T_HELLO:
            send_hello(seq);
            break;
        case TINYC_T_INFER:
            if ((uint32_t)length != (uint32_t)TINYC_INPUT_BYTES_TOTAL) {
                send_error(TINYC_E_BAD_LENGTH, (uint32_t)length,
                           "INFER payload size differs from the model's inputs");
            } else {
                infer(rx.b + TINYC_FRAME_HEADER);
            }
            break;
        case TINYC_T_EXIT:
            tx_begin(TINYC_T_BYE, seq, 0);
            tx_end();
            return 0;
        default:
            send_error(TINYC_E_UNKNOWN_TYPE, type, "unknown frame type");
            break;
        }
    }
}

void tinyc_server_fault(uint16_t code, uint32_t detail, const char *message)
{
    /* report against the request being served, then stay reachable: every request gets
       the same ERROR until the host says EXIT (a board that just vanished would leave the
       host guessing, and QEMU exiting at once could lose the report in its pty) */
    send_error(code, detail, message);
    for (;;) {
        uint8_t type, seq;
        uint32_t crc;
        int32_t length = receive_frame(&type, &seq, &crc);
        if (length < 0 || type == TINYC_T_EXIT) {
            if (length >= 0) {
                tx_begin(TINYC_T_BYE, seq, 0);
                tx_end();
            }
            tinyc_port_exit(3);
            return;
        }
        current_seq = seq;
        current_crc = crc;
        send_error(code, detail, message);
    }
}
