/* The C side of vnic's C interface: only the header; vnic.h is implemented in Swift (Sources/VNIC). */
#include "vnic.h"

_Static_assert(sizeof(vnic_status) == sizeof(int), "vnic_status must be int-sized");
