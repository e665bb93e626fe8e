/*
 * AArch64 bare-metal start-up (QEMU virt, Cortex-A72, entered at EL1 with the MMU off):
 * exception vectors, the stack, FP/SIMD enabled, .bss zeroed, an identity-mapped MMU, then
 * the board (UART), the counter and the protocol server; its return value is the exit code.
 *
 * Why the MMU: with it off every access is Device-nGnRnE, where unaligned accesses and
 * unaligned LDR Q / LDP fault on real cores; compilers emit both freely for NEON code.
 * Two 1 GB level-1 blocks: [0] 0x00000000 Device-nGnRnE (the PL011 is at 0x09000000),
 * [1] 0x40000000 Normal write-back (RAM). .bss is zeroed before, not after, the MMU is
 * switched on: the translation table lives in it.
 */
    .section .text.boot, "ax"
    .global _start
_start:
    ldr     x0, =tinyc_vectors
    msr     vbar_el1, x0
    ldr     x0, =__stack_top__
    mov     sp, x0
    mov     x0, #(3 << 20)              /* CPACR_EL1.FPEN = 0b11: FP/SIMD do not trap */
    msr     cpacr_el1, x0
    isb
    ldr     x0, =__bss_start__
    ldr     x1, =__bss_end__
1:  cmp     x0, x1
    b.hs    2f
    str     xzr, [x0], #8
    b       1b
2:  ldr     x1, =tinyc_ttb_l1
    mov     x2, #0x401                  /* 0x00000000 | AF | block, AttrIndx 0 (device) */
    str     x2, [x1]
    ldr     x2, =0x40000705             /* 0x40000000 | AF | inner shareable | AttrIndx 1 | block */
    str     x2, [x1, #8]
    ldr     x0, =0xff00                 /* MAIR_EL1: attr0 Device-nGnRnE, attr1 Normal WB RW-allocate */
    msr     mair_el1, x0
    ldr     x0, =0x803519               /* TCR_EL1: T0SZ 25 (39-bit VA, walk from level 1), WBWA, inner shareable, 4 KB granule, EPD1 */
    msr     tcr_el1, x0
    msr     ttbr0_el1, x1
    isb
    tlbi    vmalle1
    dsb     ish
    isb
    mrs     x0, sctlr_el1
    orr     x0, x0, #1                  /* M: MMU on */
    orr     x0, x0, #(1 << 2)           /* C: data cache */
    orr     x0, x0, #(1 << 12)          /* I: instruction cache */
    bic     x0, x0, #(1 << 1)           /* A: no alignment faults on Normal memory */
    msr     sctlr_el1, x0
    isb
    bl      tinyc_board_init
    bl      tinyc_counter_init
    bl      tinyc_server_run
    bl      tinyc_port_exit
3:  b       3b

    /* Any exception (16 vectors, 128 bytes apart): report ESR/ELR/FAR as an ERROR frame. */
    .balign 2048
tinyc_vectors:
    .rept 16
    b       4f
    .balign 128
    .endr
4:  mrs     x0, esr_el1
    mrs     x1, elr_el1
    mrs     x2, far_el1
    bl      tinyc_exception_report
5:  b       5b

    .section .bss.tinyc_ttb, "aw", %nobits
    .balign 4096
tinyc_ttb_l1:
    .space 4096
