/*
 * Leaving the server. Under QEMU (TINYC_SEMIHOSTING) a semihosting SYS_EXIT_EXTENDED call
 * ends the emulator with our exit code; on a real part without a debugger the same BKPT
 * would fault, so there we wait for a reset.
 */
#include <stdint.h>

#include "tinyc_protocol.h"

void tinyc_port_exit(int code)
{
#if defined(TINYC_SEMIHOSTING)
    /* ADP_Stopped_ApplicationExit (0x20026) and the code, for SYS_EXIT_EXTENDED (0x20) */
    volatile uint32_t block[2];
    block[0] = 0x20026u;
    block[1] = (uint32_t)code;
    __asm volatile(
        "mov r0, %0\n\t"
        "mov r1, %1\n\t"
        "bkpt 0xab\n\t"
        :
        : "r"(0x20u), "r"(block)
        : "r0", "r1", "memory");
#else
    (void)code;
#endif
    for (;;) {
        __asm volatile("wfi");
    }
}
