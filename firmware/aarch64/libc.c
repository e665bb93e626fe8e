/*
 * The C library functions the model and the server need on bare metal (no libc is linked:
 * glibc's string functions are IFUNCs that need its start-up code). The compiler also
 * calls these for struct copies and zeroing loops. Loops are word-wise when the
 * pointers allow it (the MMU maps RAM as Normal memory, so unaligned words are fine too).
 */
#include <stddef.h>
#include <stdint.h>

/* keep gcc from turning these loops back into calls to themselves */
#pragma GCC optimize("no-tree-loop-distribute-patterns")

typedef uint64_t __attribute__((may_alias, aligned(1))) tinyc_u64_unaligned;

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    for (; n >= 8; n -= 8, d += 8, s += 8) {
        *(tinyc_u64_unaligned *)d = *(const tinyc_u64_unaligned *)s;
    }
    while (n--) {
        *d++ = *s++;
    }
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (d <= s || d >= s + n) {
        return memcpy(dst, src, n);
    }
    while (n--) {
        d[n] = s[n];
    }
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    uint8_t *d = dst;
    const uint64_t v = 0x0101010101010101u * (uint8_t)c;
    for (; n >= 8; n -= 8, d += 8) {
        *(tinyc_u64_unaligned *)d = v;
    }
    while (n--) {
        *d++ = (uint8_t)c;
    }
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (; n; --n, ++x, ++y) {
        if (*x != *y) {
            return *x < *y ? -1 : 1;
        }
    }
    return 0;
}
