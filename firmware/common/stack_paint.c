/*
 * Stack painting on bare metal (Cortex-M and AArch64): the free stack from __stack_limit__
 * (the linker script's bottom of the stack) to SP holds a pattern; the lowest overwritten
 * word is the high-water mark. The whole free stack is repainted before each inference (a
 * few instructions a word, outside the counted region), so each inference is measured alone.
 */
#include <stdint.h>

#include "tinyc_protocol.h"

extern uintptr_t __stack_limit__;

#define STACK_PATTERN ((uintptr_t)0xA5A5A5A5A5A5A5A5ull)

static uintptr_t paint_top; /* SP when painted: use is measured below it */

static uintptr_t current_sp(void)
{
    uintptr_t sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

void tinyc_stack_paint(void)
{
    volatile uintptr_t *p = (volatile uintptr_t *)&__stack_limit__;
    uintptr_t sp = current_sp() & ~(uintptr_t)(sizeof(uintptr_t) - 1u);
    while ((uintptr_t)p < sp) {
        *p++ = STACK_PATTERN;
    }
    paint_top = sp;
}

uint32_t tinyc_stack_used(void)
{
    const volatile uintptr_t *p = (const volatile uintptr_t *)&__stack_limit__;
    while ((uintptr_t)p < paint_top && *p == STACK_PATTERN) {
        ++p;
    }
    return (uint32_t)(paint_top - (uintptr_t)p);
}
