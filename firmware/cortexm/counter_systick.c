/*
 * Cycle counter from SysTick: the 24-bit down-counter of the core clock, widened to 64
 * bits by counting wraps in its interrupt. Under QEMU with -icount shift=0 virtual time
 * advances 1 ns per instruction, so ticks convert exactly to instructions
 * (ticks * 1e9 / clock_hz); on a real part they are core cycles.
 */
#include <stdint.h>

#include "tinyc_protocol.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static volatile uint32_t wraps;

void tinyc_systick_handler(void)
{
    ++wraps;
}

void tinyc_counter_init(void)
{
    SYST_RVR = 0x00FFFFFFu;
    tinyc_counter_reset();
}

/*
 * Restarts the count at 0 with a fixed phase, so that two runs of the same inference
 * read the same numbers. A write to CVR clears it; the counter reloads from RVR on the
 * next tick, which we wait for.
 */
void tinyc_counter_reset(void)
{
    SYST_CSR = 0;
    SYST_CVR = 0;
    SYST_CSR = 7; /* processor clock, wrap interrupt, enabled */
    while (SYST_CVR == 0) {
    }
    wraps = 0;
}

uint64_t tinyc_counter_read(void)
{
    uint32_t hi, v;
    for (;;) {
        hi = wraps;
        v = SYST_CVR;
        /* CVR = 0 is the last tick of a period, whose wrap interrupt may not have been
           taken yet; a wrap between the two reads: read again in both cases */
        if (v != 0 && hi == wraps) {
            break;
        }
    }
    return ((uint64_t)hi << 24) + (0x00FFFFFFu - v);
}
