/*
 * Cycle counter from the DWT unit (CYCCNT): real core cycles on Cortex-M3/M4/M7/M33/M55
 * parts. It does not exist in QEMU, so emulated boards use counter_systick.c.
 * The 32-bit count is widened to 64 bits on each read (reads come far more often than
 * every 2^32 cycles).
 */
#include <stdint.h>

#include "tinyc_protocol.h"

#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define DWT_LAR (*(volatile uint32_t *)0xE0001FB0u)

static uint32_t last;
static uint64_t high;

void tinyc_systick_handler(void)
{
}

void tinyc_counter_init(void)
{
    DEMCR |= 1u << 24;       /* TRCENA: power the DWT */
    DWT_LAR = 0xC5ACCE55u;   /* unlock (Cortex-M7); ignored where there is no lock */
    DWT_CTRL |= 1u;          /* CYCCNTENA */
    tinyc_counter_reset();
}

void tinyc_counter_reset(void)
{
    DWT_CYCCNT = 0;
    last = 0;
    high = 0;
}

uint64_t tinyc_counter_read(void)
{
    uint32_t now = DWT_CYCCNT;
    if (now < last) {
        high += 1ull << 32;
    }
    last = now;
    return high | now;
}
