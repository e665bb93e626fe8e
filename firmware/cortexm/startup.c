/*
 * Cortex-M start-up: vector table, reset handler (FPU on, .data copied, .bss zeroed),
 * fault handlers that report the fault to the host as an ERROR frame instead of hanging
 * silently. Stack painting is common/stack_paint.c.
 */
#include <stdint.h>

#include "tinyc_protocol.h"

extern uint32_t __data_load__, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern uint32_t __stack_top__;

void tinyc_board_init(void);
void tinyc_systick_handler(void);
void Reset_Handler(void);
void Default_Handler(void);
void Fault_Handler(void);
void tinyc_fault_report(const uint32_t *frame, uint32_t exc_return);
int main(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)

typedef void (*vector_t)(void);

/* 16 system exceptions; the server polls its UART, so no device interrupts are used. */
__attribute__((section(".vectors"), used)) const vector_t tinyc_vectors[16] = {
    (vector_t)(uintptr_t)&__stack_top__,
    Reset_Handler,
    Default_Handler, /* NMI */
    Fault_Handler,   /* HardFault */
    Fault_Handler,   /* MemManage */
    Fault_Handler,   /* BusFault */
    Fault_Handler,   /* UsageFault */
    Fault_Handler,   /* SecureFault (v8-M) */
    0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMon */
    0,
    Default_Handler, /* PendSV */
    tinyc_systick_handler
};

void Reset_Handler(void)
{
    uint32_t *src = &__data_load__, *dst = &__data_start__;
#if defined(__ARM_FP)
    /* CP10 and CP11 full access before any floating-point instruction runs */
    SCB_CPACR |= 0xFu << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    SCB_VTOR = (uint32_t)(uintptr_t)tinyc_vectors;
    while (dst < &__data_end__) {
        *dst++ = *src++;
    }
    for (dst = &__bss_start__; dst < &__bss_end__; ++dst) {
        *dst = 0;
    }
    tinyc_board_init();
    tinyc_port_exit(main());
    for (;;) {
    }
}

void Default_Handler(void)
{
    tinyc_server_fault(TINYC_E_FAULT, 0, "unexpected exception");
    for (;;) {
    }
}

/* Picks the stack the exception frame was pushed on, then reports in C. */
__attribute__((naked)) void Fault_Handler(void)
{
    __asm volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "mov r1, lr\n\t"
        "b tinyc_fault_report\n\t");
}

static char *put_hex(char *p, uint32_t v)
{
    int i;
    for (i = 7; i >= 0; --i) {
        uint32_t d = (v >> (4 * i)) & 15u;
        *p++ = (char)(d < 10 ? '0' + d : 'a' + d - 10);
    }
    return p;
}

void tinyc_fault_report(const uint32_t *frame, uint32_t exc_return)
{
    static const char head[] = "fault: pc=0x";
    char msg[64];
    char *p = msg;
    const char *h;
    uint32_t pc = frame[6];
    (void)exc_return;
    for (h = head; *h; ++h) {
        *p++ = *h;
    }
    p = put_hex(p, pc);
    for (h = " cfsr=0x"; *h; ++h) {
        *p++ = *h;
    }
    p = put_hex(p, SCB_CFSR);
    for (h = " hfsr=0x"; *h; ++h) {
        *p++ = *h;
    }
    p = put_hex(p, SCB_HFSR);
    *p = '\0';
    tinyc_server_fault(TINYC_E_FAULT, pc, msg);
    for (;;) {
    }
}
