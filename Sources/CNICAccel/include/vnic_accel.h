// Hardware-assisted helpers for NICCore's hot loops. Each entry point reports whether it could do the work, so the
// Swift side keeps a portable path for every CPU.
#ifndef VNIC_ACCEL_H
#define VNIC_ACCEL_H

#include <stddef.h>
#include <stdint.h>

/// Whether vnic_accel_crc32_fold can run here (x86-64 with PCLMULQDQ and SSE4.1).
int vnic_accel_crc32_available(void);

/// Continues the raw (un-inverted, reflected) IEEE 802.3 CRC-32 register `crc` over `length` bytes at `bytes` by
/// carry-less multiplication. `length` must be at least 64 and a multiple of 16; callers finish any tail bytes with a
/// table. Only call it when vnic_accel_crc32_available() returned 1.
uint32_t vnic_accel_crc32_fold(uint32_t crc, const void *bytes, size_t length);

#endif
