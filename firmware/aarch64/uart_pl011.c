/*
 * Arm PL011 UART (QEMU virt: 0x09000000), polled, no interrupts.
 * DR +0x00, FR +0x18 (bit 4 RXFE: receive FIFO empty, bit 5 TXFF: transmit FIFO full,
 * bit 3 BUSY), IBRD +0x24, FBRD +0x28, LCR_H +0x2C (8 bits, FIFOs on), CR +0x30.
 * TINYC_UART_BASE, TINYC_UART_CLOCK_HZ and TINYC_BAUD come from the board file.
 */
#include <stdint.h>

#include "tinyc_protocol.h"

#define UART_REG(off) (*(volatile uint32_t *)(uintptr_t)(TINYC_UART_BASE + (off)))
#define UART_DR UART_REG(0x00u)
#define UART_FR UART_REG(0x18u)
#define UART_IBRD UART_REG(0x24u)
#define UART_FBRD UART_REG(0x28u)
#define UART_LCR_H UART_REG(0x2Cu)
#define UART_CR UART_REG(0x30u)

#define FR_BUSY (1u << 3)
#define FR_RXFE (1u << 4)
#define FR_TXFF (1u << 5)

void tinyc_board_init(void)
{
    /* divisor = clock / (16 * baud) as 16.6 fixed point, rounded */
    const uint32_t div64 = (uint32_t)(((uint64_t)TINYC_UART_CLOCK_HZ * 4u + TINYC_BAUD / 2u) / TINYC_BAUD);
    UART_CR = 0;
    UART_IBRD = div64 >> 6;
    UART_FBRD = div64 & 63u;
    UART_LCR_H = (3u << 5) | (1u << 4); /* 8 data bits, FIFOs enabled */
    UART_CR = (1u << 0) | (1u << 8) | (1u << 9); /* UARTEN, TXE, RXE */
}

int tinyc_port_getc(void)
{
    while (UART_FR & FR_RXFE) {
    }
    return (int)(UART_DR & 0xFFu);
}

void tinyc_port_putc(uint8_t byte)
{
    while (UART_FR & FR_TXFF) {
    }
    UART_DR = byte;
}

void tinyc_port_flush(void)
{
    while (UART_FR & FR_BUSY) {
    }
}
