/*
 * AArch64 bare metal: leaving the server, and exceptions reported to the host as an ERROR
 * frame instead of a silent hang (stack painting is common/stack_paint.c).
 */
#include <stdint.h>

#include "tinyc_protocol.h"

void tinyc_exception_report(uint64_t esr, uint64_t elr, uint64_t far);

/* Under QEMU (TINYC_SEMIHOSTING) SYS_EXIT_EXTENDED ends the emulator with our exit code;
   elsewhere HLT would trap, so there we wait for a reset. */
void tinyc_port_exit(int code)
{
#if defined(TINYC_SEMIHOSTING)
    /* ADP_Stopped_ApplicationExit (0x20026) and the code, for SYS_EXIT_EXTENDED (0x20) */
    volatile uint64_t block[2];
    block[0] = 0x20026u;
    block[1] = (uint64_t)(uint32_t)code;
    __asm volatile(
        "mov x0, %0\n\t"
        "mov x1, %1\n\t"
        "hlt #0xf000\n\t"
        :
        : "r"((uint64_t)0x20u), "r"(block)
        : "x0", "x1", "memory");
#else
    (void)code;
#endif
    for (;;) {
        __asm volatile("wfi");
    }
}

static char *put_hex(char *p, uint64_t v, int digits)
{
    int i;
    for (i = digits - 1; i >= 0; --i) {
        uint32_t d = (uint32_t)(v >> (4 * i)) & 15u;
        *p++ = (char)(d < 10 ? '0' + d : 'a' + d - 10);
    }
    return p;
}

static char *put_str(char *p, const char *s)
{
    while (*s) {
        *p++ = *s++;
    }
    return p;
}

/* Called from the vector table (startup.S) with the syndrome, the faulting PC and address. */
void tinyc_exception_report(uint64_t esr, uint64_t elr, uint64_t far)
{
    char msg[80];
    char *p = msg;
    p = put_str(p, "fault: pc=0x");
    p = put_hex(p, elr, 16);
    p = put_str(p, " esr=0x");
    p = put_hex(p, esr, 8);
    p = put_str(p, " far=0x");
    p = put_hex(p, far, 16);
    *p = '\0';
    tinyc_server_fault(TINYC_E_FAULT, (uint32_t)elr, msg);
    for (;;) {
    }
}
