/*
 * CMSDK APB UART (Arm MPS2/MPS3 FPGA images): polled, no interrupts.
 * DATA +0x0, STATE +0x4 (bit 0 TX full, bit 1 RX full), CTRL +0x8 (bit 0 TX enable,
 * bit 1 RX enable), BAUDDIV +0x10 (>= 16).
 * TINYC_UART_BASE, TINYC_UART_CLOCK_HZ and TINYC_BAUD come from the board file.
 */
#include <stdint.h>

#include "tinyc_protocol.h"

#define UART_DATA (*(volatile uint32_t *)(TINYC_UART_BASE + 0x0u))
#define UART_STATE (*(volatile uint32_t *)(TINYC_UART_BASE + 0x4u))
#define UART_CTRL (*(volatile uint32_t *)(TINYC_UART_BASE + 0x8u))
#define UART_BAUDDIV (*(volatile uint32_t *)(TINYC_UART_BASE + 0x10u))

void tinyc_board_init(void)
{
    uint32_t div = (TINYC_UART_CLOCK_HZ + TINYC_BAUD / 2u) / TINYC_BAUD;
    UART_BAUDDIV = div < 16u ? 16u : div;
    UART_CTRL = 3u;
}

int tinyc_port_getc(void)
{
    while ((UART_STATE & 2u) == 0) {
    }
    return (int)(UART_DATA & 0xFFu);
}

void tinyc_port_putc(uint8_t byte)
{
    while ((UART_STATE & 1u) != 0) {
    }
    UART_DATA = byte;
}

void tinyc_port_flush(void)
{
    while ((UART_STATE & 1u) != 0) {
    }
}
