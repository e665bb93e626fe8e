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
    SYST_CSR = 0;
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0; /* any write clears it: the count restarts from the reload value */
    wraps = 0;
    SYST_CSR = 7; /* processor clock, wrap interrupt, enabled */
}

uint64_t tinyc_counter_read(void)
{
    uint32_t hi, v;
    do {
        hi = wraps;
        v = SYST_CVR;
    } while (hi != wraps); /* a wrap in between: read again */
    return ((uint64_t)hi << 24) + (0x00FFFFFFu - v);
}
