/*
 * Cycle counter PMCCNTR_EL0 (64 bits). On a real Cortex-A72 it counts core cycles; under
 * QEMU with -icount shift=0 it advances exactly one per instruction (QEMU derives it from
 * virtual time at 1 GHz, and each instruction is 1 ns), so the counts are instructions.
 */
#include <stdint.h>

#include "tinyc_protocol.h"

void tinyc_counter_init(void)
{
    uint64_t pmcr;
    __asm volatile("mrs %0, pmcr_el0" : "=r"(pmcr));
    pmcr |= 1u;                                    /* E: counters enabled */
    pmcr &= ~(uint64_t)(1u << 3);                  /* D: count every cycle, not every 64th */
    __asm volatile("msr pmcr_el0, %0" : : "r"(pmcr));
    __asm volatile("msr pmcntenset_el0, %0" : : "r"((uint64_t)1u << 31)); /* C: the cycle counter */
    __asm volatile("isb");
    tinyc_counter_reset();
}

/* A direct write of 0 fixes the phase: two runs of the same inference read the same count. */
void tinyc_counter_reset(void)
{
    __asm volatile("msr pmccntr_el0, xzr\n\tisb" ::: "memory");
}

uint64_t tinyc_counter_read(void)
{
    uint64_t v;
    __asm volatile("isb\n\tmrs %0, pmccntr_el0" : "=r"(v) : : "memory");
    return v;
}
