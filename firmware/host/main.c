/*
 * tinyc host harness: runs the generated model as a local process.
 *
 * Protocol on stdin/stdout (binary, little-endian), one record per sample:
 *   in:  TINYC_INPUT_BYTES_TOTAL bytes (inputs concatenated in order)
 *   out: TINYC_OUTPUT_BYTES_TOTAL bytes, then uint64 nanoseconds spent in tinyc_invoke
 * It exits 0 at end of input. The serial protocol server (firmware/common) is the one
 * boards speak; this plain pipe keeps host validation of thousands of samples fast.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "model.h"

static const uint32_t input_bytes[TINYC_NUM_INPUTS] = { TINYC_INPUT_BYTES_LIST };
static const uint32_t output_bytes[TINYC_NUM_OUTPUTS] = { TINYC_OUTPUT_BYTES_LIST };

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(void)
{
    static union { int64_t align; uint8_t b[TINYC_INPUT_BYTES_TOTAL]; } in;
    static union { int64_t align; uint8_t b[TINYC_OUTPUT_BYTES_TOTAL]; } out;
    const void *inputs[TINYC_NUM_INPUTS];
    void *outputs[TINYC_NUM_OUTPUTS];
    uint32_t off = 0;
    int i;

    for (i = 0; i < TINYC_NUM_INPUTS; ++i) {
        inputs[i] = in.b + off;
        off += input_bytes[i];
    }
    off = 0;
    for (i = 0; i < TINYC_NUM_OUTPUTS; ++i) {
        outputs[i] = out.b + off;
        off += output_bytes[i];
    }
    for (;;) {
        uint64_t t0, t1, ns;
        uint8_t ns_le[8];
        size_t got = fread(in.b, 1, sizeof in.b, stdin);
        if (got == 0) {
            return 0;
        }
        if (got != sizeof in.b) {
            fprintf(stderr, "tinyc host: short input record (%u of %u bytes)\n",
                    (unsigned)got, (unsigned)sizeof in.b);
            return 3;
        }
        t0 = now_ns();
        tinyc_invoke_all(inputs, outputs);
        t1 = now_ns();
        ns = t1 - t0;
        for (i = 0; i < 8; ++i) {
            ns_le[i] = (uint8_t)(ns >> (8 * i));
        }
        if (fwrite(out.b, 1, sizeof out.b, stdout) != sizeof out.b || fwrite(ns_le, 1, 8, stdout) != 8) {
            return 4;
        }
        fflush(stdout);
    }
}
