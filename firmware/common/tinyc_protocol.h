/*
 * tinyc serial protocol, version 1: one protocol for every target (Cortex-M over a UART,
 * Linux over a tty, a pty or stdin/stdout). tinyc/link.py is the host side.
 *
 * Wire format. Every frame is COBS-encoded (Cheshire & Baker) and sent between two 0x00
 * bytes: 0x00 is the sync byte and never occurs inside a frame, so a receiver that lost
 * its place (garbage, a dropped byte) is back in step at the next 0x00 without trusting
 * any length field. Decoded, a frame is
 *
 *   offset 0  type     u8
 *          1  seq      u8   a reply carries the seq of its request
 *          2  version  u8   TINYC_PROTO_VERSION
 *          3  flags    u8   0
 *          4  length   u32  payload bytes (little-endian, as every field)
 *          8  payload  length bytes (8-aligned in the receive buffer)
 *   8+length  crc      u32  CRC-32 (IEEE 802.3, as zlib.crc32) of bytes 0 .. 8+length-1
 *
 * A frame whose length, version or CRC is wrong is dropped without a reply: the host
 * retries when its reply timer runs out.
 *
 * Host -> board: HELLO (empty; also the ping of the handshake; accepted with any version
 * byte, so a host learns the version of any board), INFER (all input tensors,
 * concatenated in order), EXIT (empty).
 * Board -> host: HELLO reply, RESULT, BYE (reply to EXIT), ERROR. Payloads are laid out in
 * tinyc_server.c (and decoded in tinyc/link.py).
 */
#ifndef TINYC_PROTOCOL_H
#define TINYC_PROTOCOL_H

#include <stdint.h>

#define TINYC_PROTO_VERSION 2u
/* RESULT stack_bytes when the platform does not measure its stack */
#define TINYC_STACK_UNKNOWN 0xFFFFFFFFu
#define TINYC_FRAME_HEADER 8u
#define TINYC_FRAME_CRC 4u

enum tinyc_frame_type {
    TINYC_T_HELLO = 0x01,
    TINYC_T_INFER = 0x02,
    TINYC_T_EXIT = 0x03,
    TINYC_T_HELLO_REPLY = 0x81,
    TINYC_T_RESULT = 0x82,
    TINYC_T_BYE = 0x83,
    TINYC_T_ERROR = 0xE0
};

enum tinyc_error_code {
    TINYC_E_BAD_LENGTH = 1,   /* INFER payload is not TINYC_INPUT_BYTES_TOTAL bytes */
    TINYC_E_UNKNOWN_TYPE = 2, /* a valid frame of a type the board does not serve */
    TINYC_E_INVOKE = 3,       /* tinyc_invoke_all returned non-zero (detail = its value) */
    TINYC_E_FAULT = 4         /* HardFault & co. (detail = faulting PC) */
};

/* Where cycle counts come from (HELLO reply field `cycle_source`). */
enum tinyc_cycle_source {
    TINYC_CYC_NONE = 0,
    TINYC_CYC_SYSTICK = 1, /* SysTick ticks of the core clock (instructions under QEMU -icount) */
    TINYC_CYC_DWT = 2,     /* DWT CYCCNT: real core cycles */
    TINYC_CYC_NS = 3,      /* clock_gettime(CLOCK_MONOTONIC) nanoseconds */
    TINYC_CYC_PMCCNTR = 4  /* AArch64 PMCCNTR_EL0: cycles (instructions under QEMU -icount) */
};

/* ---- what each platform provides (cortexm/ or linux/) ---- */

/* Next byte from the link; blocks. Returns -1 when the link is gone (Linux: EOF). */
int tinyc_port_getc(void);
/* Queue one byte for the link; blocks while the transmitter is full. */
void tinyc_port_putc(uint8_t byte);
/* Push queued bytes out (Linux: fflush/write; UARTs: wait until the shifter is empty). */
void tinyc_port_flush(void);
/* Free-running counter, in units of the platform's cycle source. */
void tinyc_counter_init(void);
/* Restart the count at (about) 0 right before a measured region: fixes the phase. */
void tinyc_counter_reset(void);
uint64_t tinyc_counter_read(void);
/* Leave the server: semihosting exit under QEMU, exit() on Linux, a wait loop on a part. */
void tinyc_port_exit(int code);
/* Fill the free stack below the caller with a pattern (Cortex-M: from the stack limit to
   the current SP; Linux: a region below the current SP). Called at start-up and right
   before each inference. */
void tinyc_stack_paint(void);
/* Bytes of the painted region overwritten since tinyc_stack_paint (the high-water mark of
   the stack below the caller), or TINYC_STACK_UNKNOWN. */
uint32_t tinyc_stack_used(void);

/* ---- what the common server provides ---- */

/* Serves frames until EXIT or the link closes; returns the exit code. */
int tinyc_server_run(void);
/* After a fault: reports it (ERROR frame), answers every later request with the same
   ERROR, and exits (tinyc_port_exit(3)) on EXIT. Does not return. */
void tinyc_server_fault(uint16_t code, uint32_t detail, const char *message);
/* CRC-32 (reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF). */
uint32_t tinyc_crc32_update(uint32_t crc, const uint8_t *data, uint32_t n);

#endif /* TINYC_PROTOCOL_H */
