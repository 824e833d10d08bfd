// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) folded 64 bytes at a time with carry-less multiplication, as
// described in Intel's white paper "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ Instruction"
// (Gopal et al., 2009). The constants are x^k mod P(x) for the reflected polynomial, bit-reflected and shifted left
// by one, as section 4 of the paper derives them:
//   fold by 2048 bits: x^(16*128+32) mod P, x^(16*128-32) mod P (four 512-bit lanes, VPCLMULQDQ)
//   fold by 512 bits:  x^(4*128+32) mod P, x^(4*128-32) mod P
//   fold by 128 bits:  x^(128+32) mod P,   x^(128-32) mod P
//   fold 64 to 32:     x^64 mod P
//   Barrett reduction: P(x) itself and mu = floor(x^64 / P(x))
#include "vnic_accel.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

int vnic_accel_crc32_available(void)
{
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
        return 0;
    }
    return (ecx & bit_PCLMUL) && (ecx & bit_SSE4_1);
}

/* AVX-512 with VPCLMULQDQ, and the OS saving the opmask and ZMM state (XCR0 bits 1, 2, 5, 6, 7). */
static int wide_available(void)
{
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE)) {
        return 0;
    }
    unsigned int xcr0_low, xcr0_high;
    __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    if ((xcr0_low & 0xE6) != 0xE6) {
        return 0;
    }
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
        return 0;
    }
    return (ebx & bit_AVX512F) && (ecx & bit_VPCLMULQDQ);
}

#define FOLD_2048_LOW 0x011542778aULL
#define FOLD_2048_HIGH 0x01322d1430ULL
#define FOLD_512_LOW 0x0154442bd4ULL
#define FOLD_512_HIGH 0x01c6e41596ULL
#define FOLD_128_LOW 0x01751997d0ULL
#define FOLD_128_HIGH 0x00ccaa009eULL
#define FOLD_64 0x0163cd6124ULL
#define POLYNOMIAL 0x01db710641ULL
#define MU 0x01f7011641ULL

/* One fold step: `acc` carried forward over 128 bits (or 512) by the two constants in `k`, plus the next data. */
__attribute__((target("pclmul,sse4.1"))) static inline __m128i fold(__m128i acc, __m128i k, __m128i data)
{
    __m128i low = _mm_clmulepi64_si128(acc, k, 0x00);
    __m128i high = _mm_clmulepi64_si128(acc, k, 0x11);
    return _mm_xor_si128(_mm_xor_si128(low, high), data);
}

/* The 512-bit form of fold(): four 128-bit lanes at once. */
__attribute__((target("avx512f,vpclmulqdq"))) static inline __m512i fold_wide(__m512i acc, __m512i k, __m512i data)
{
    __m512i low = _mm512_clmulepi64_epi128(acc, k, 0x00);
    __m512i high = _mm512_clmulepi64_epi128(acc, k, 0x11);
    return _mm512_ternarylogic_epi64(low, high, data, 0x96);
}

/* 256 bytes per round in four 512-bit registers, then down to the four 128-bit lanes the narrow path continues with.
   `length` is at least 256; returns the bytes consumed, a multiple of 64. */
__attribute__((target("avx512f,vpclmulqdq"))) static size_t fold_wide_lanes(
    uint32_t crc, const unsigned char *p, size_t length, __m128i lanes[4])
{
    __m512i a = _mm512_loadu_si512((const void *)(p + 0));
    __m512i b = _mm512_loadu_si512((const void *)(p + 64));
    __m512i c = _mm512_loadu_si512((const void *)(p + 128));
    __m512i d = _mm512_loadu_si512((const void *)(p + 192));
    a = _mm512_xor_si512(a, _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)crc)));
    size_t done = 256;
    const __m512i k2048 = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)FOLD_2048_HIGH, (long long)FOLD_2048_LOW));
    while (length - done >= 256) {
        a = fold_wide(a, k2048, _mm512_loadu_si512((const void *)(p + done)));
        b = fold_wide(b, k2048, _mm512_loadu_si512((const void *)(p + done + 64)));
        c = fold_wide(c, k2048, _mm512_loadu_si512((const void *)(p + done + 128)));
        d = fold_wide(d, k2048, _mm512_loadu_si512((const void *)(p + done + 192)));
        done += 256;
    }
    /* Four registers into one, 512 bits at a time, and any further 64-byte blocks. */
    const __m512i k512 = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)FOLD_512_HIGH, (long long)FOLD_512_LOW));
    a = fold_wide(a, k512, b);
    a = fold_wide(a, k512, c);
    a = fold_wide(a, k512, d);
    while (length - done >= 64) {
        a = fold_wide(a, k512, _mm512_loadu_si512((const void *)(p + done)));
        done += 64;
    }
    lanes[0] = _mm512_extracti32x4_epi32(a, 0);
    lanes[1] = _mm512_extracti32x4_epi32(a, 1);
    lanes[2] = _mm512_extracti32x4_epi32(a, 2);
    lanes[3] = _mm512_extracti32x4_epi32(a, 3);
    return done;
}

__attribute__((target("pclmul,sse4.1"))) uint32_t vnic_accel_crc32_fold(uint32_t crc, const void *bytes, size_t length)
{
    static int wide = -1;
    if (wide < 0) {
        wide = wide_available();
    }
    const unsigned char *p = bytes;
    const __m128i k512 = _mm_set_epi64x((long long)FOLD_512_HIGH, (long long)FOLD_512_LOW);
    __m128i a, b, c, d;
    if (wide && length >= 256) {
        __m128i lanes[4];
        size_t done = fold_wide_lanes(crc, p, length, lanes);
        a = lanes[0];
        b = lanes[1];
        c = lanes[2];
        d = lanes[3];
        p += done;
        length -= done;
    } else {
        a = _mm_loadu_si128((const __m128i *)(p + 0));
        b = _mm_loadu_si128((const __m128i *)(p + 16));
        c = _mm_loadu_si128((const __m128i *)(p + 32));
        d = _mm_loadu_si128((const __m128i *)(p + 48));
        a = _mm_xor_si128(a, _mm_cvtsi32_si128((int)crc));
        p += 64;
        length -= 64;
    }

    /* Four lanes, each carried 512 bits forward per round. */
    while (length >= 64) {
        a = fold(a, k512, _mm_loadu_si128((const __m128i *)(p + 0)));
        b = fold(b, k512, _mm_loadu_si128((const __m128i *)(p + 16)));
        c = fold(c, k512, _mm_loadu_si128((const __m128i *)(p + 32)));
        d = fold(d, k512, _mm_loadu_si128((const __m128i *)(p + 48)));
        p += 64;
        length -= 64;
    }

    /* The four lanes into one, then the remaining 16-byte blocks. */
    const __m128i k128 = _mm_set_epi64x((long long)FOLD_128_HIGH, (long long)FOLD_128_LOW);
    a = fold(a, k128, b);
    a = fold(a, k128, c);
    a = fold(a, k128, d);
    while (length >= 16) {
        a = fold(a, k128, _mm_loadu_si128((const __m128i *)p));
        p += 16;
        length -= 16;
    }

    /* 128 bits to 64: the low half times x^(128-32) mod P, added to the high half. */
    const __m128i low32 = _mm_setr_epi32(-1, 0, -1, 0);
    __m128i t = _mm_clmulepi64_si128(a, k128, 0x10);
    a = _mm_xor_si128(_mm_srli_si128(a, 8), t);
    /* 96 bits to 64: the low 32 bits times x^64 mod P. */
    const __m128i k64 = _mm_set_epi64x(0, (long long)FOLD_64);
    t = _mm_srli_si128(a, 4);
    a = _mm_clmulepi64_si128(_mm_and_si128(a, low32), k64, 0x00);
    a = _mm_xor_si128(a, t);

    /* Barrett reduction to the 32-bit remainder. */
    const __m128i barrett = _mm_set_epi64x((long long)MU, (long long)POLYNOMIAL);
    t = _mm_clmulepi64_si128(_mm_and_si128(a, low32), barrett, 0x10);
    t = _mm_clmulepi64_si128(_mm_and_si128(t, low32), barrett, 0x00);
    a = _mm_xor_si128(a, t);
    return (uint32_t)_mm_extract_epi32(a, 1);
}

#else

int vnic_accel_crc32_available(void) { return 0; }

uint32_t vnic_accel_crc32_fold(uint32_t crc, const void *bytes, size_t length)
{
    (void)bytes;
    (void)length;
    return crc;
}

#endif
