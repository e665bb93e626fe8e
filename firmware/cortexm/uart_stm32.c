/*
 * STM32F4 USART (USART1 on the Netduino Plus 2, USART2 = ST-LINK VCP on a Nucleo-F446RE):
 * polled. SR +0x00 (RXNE bit 5, TC bit 6, TXE bit 7, ORE bit 3), DR +0x04, BRR +0x08,
 * CR1 +0x0C (UE bit 13, TE bit 3, RE bit 2).
 *
 * Clocks stay at reset values (HSI 16 MHz, no PLL): QEMU has no RCC model and vendor clock
 * set-up hangs there, and cycle counts do not depend on the clock. The RCC enable bit and
 * the GPIO alternate-function set-up for the TX/RX pins come from the board file
 * (TINYC_USART_RCC_*, TINYC_USART_GPIO_*); QEMU ignores those writes.
 * A USART drops bytes that arrive before UE/RE are set: the host handshakes first.
 */
#include <stdint.h>

#include "tinyc_protocol.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
#define USART_SR REG(TINYC_UART_BASE + 0x00u)
#define USART_DR REG(TINYC_UART_BASE + 0x04u)
#define USART_BRR REG(TINYC_UART_BASE + 0x08u)
#define USART_CR1 REG(TINYC_UART_BASE + 0x0Cu)

#define RCC_AHB1ENR REG(0x40023830u)

void tinyc_board_init(void)
{
#if defined(TINYC_USART_GPIO_BASE)
    /* GPIO port clock, then TX/RX pins to alternate function TINYC_USART_GPIO_AF */
    uint32_t pins[2] = { TINYC_USART_GPIO_TX_PIN, TINYC_USART_GPIO_RX_PIN };
    int i;
    RCC_AHB1ENR |= 1u << TINYC_USART_GPIO_PORT_INDEX;
    (void)RCC_AHB1ENR;
    for (i = 0; i < 2; ++i) {
        uint32_t p = pins[i];
        volatile uint32_t *afr = (volatile uint32_t *)(TINYC_USART_GPIO_BASE + (p < 8u ? 0x20u : 0x24u));
        REG(TINYC_USART_GPIO_BASE + 0x00u) = (REG(TINYC_USART_GPIO_BASE + 0x00u) & ~(3u << (2u * p))) | (2u << (2u * p));
        *afr = (*afr & ~(15u << (4u * (p & 7u)))) | ((uint32_t)TINYC_USART_GPIO_AF << (4u * (p & 7u)));
    }
#endif
#if defined(TINYC_USART_RCC_ENR)
    REG(TINYC_USART_RCC_ENR) |= 1u << TINYC_USART_RCC_BIT;
    (void)REG(TINYC_USART_RCC_ENR); /* read back: the clock is on before the first access */
#endif
    USART_CR1 = 0;
    /* oversampling by 16: BRR holds pclk / baud in 12.4 fixed point, i.e. pclk / baud */
    USART_BRR = (TINYC_UART_CLOCK_HZ + TINYC_BAUD / 2u) / TINYC_BAUD;
    USART_CR1 = (1u << 13) | (1u << 3) | (1u << 2);
}

int tinyc_port_getc(void)
{
    uint32_t sr;
    do {
        sr = USART_SR;
    } while ((sr & (1u << 5)) == 0);
    return (int)(USART_DR & 0xFFu); /* reading DR also clears an overrun */
}

void tinyc_port_putc(uint8_t byte)
{
    while ((USART_SR & (1u << 7)) == 0) {
    }
    USART_DR = byte;
}

void tinyc_port_flush(void)
{
    while ((USART_SR & (1u << 6)) == 0) {
    }
}
