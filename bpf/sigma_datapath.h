/* sigma-ts data path: the layout shared by the sk_msg program (sigma_datapath.bpf.c), the native addon
 * and TypeScript (src/datapath/frames.ts mirrors it once). Fixed width, explicit padding. */
#ifndef SIGMA_DATAPATH_H
#define SIGMA_DATAPATH_H

#include <linux/types.h>

/* One descriptor: names a buffer in the realm's pool, never a pointer. */
struct sigma_desc {
	__u32 dst_ep;     /* destination endpoint */
	__u32 src_ep;     /* source endpoint: stamped by the kernel from the sender's identity */
	__u32 offset;     /* into the realm's pool */
	__u32 length;
	__u32 generation; /* of the buffer: stale descriptors are rejected */
	__u32 flags;
	__u64 request_id;
};
#define SIGMA_DESC_SIZE 32
_Static_assert(sizeof(struct sigma_desc) == SIGMA_DESC_SIZE, "descriptor must be 32 bytes");

/* Reserved endpoints. The hub is the node manager's slow path for rejected descriptors. */
#define SIGMA_HUB_EP 1
/* Realm 0 is the system (the hub): it may send to any endpoint. */
#define SIGMA_SYSTEM_REALM 0

/* flags: low bits belong to the data path's protocol (0x1 = credit return); the kernel sets the top
 * bit on a descriptor it diverted to the hub, and one reason in bits 24..30. */
#define SIGMA_F_REJECTED        (1u << 31)
#define SIGMA_R_NO_IDENTITY     (1u << 24)
#define SIGMA_R_UNKNOWN_DST     (1u << 25)
#define SIGMA_R_CROSS_REALM     (1u << 26)
#define SIGMA_R_MASK            (0x7fu << 24)

/* SK_STORAGE value: who a socket is, written by the node manager when it registers the socket. */
struct sigma_identity {
	__u32 realm;
	__u32 endpoint;
};

/* ep_info value: the realm each destination endpoint belongs to. */
struct sigma_ep_info {
	__u32 realm;
	__u32 pad;
};

/* exports key: dst_ep reachable from src_realm although it lives in another realm. */
struct sigma_export_key {
	__u32 src_realm;
	__u32 dst_ep;
};

/* Per-CPU counters per sending endpoint. */
struct sigma_metrics {
	__u64 msgs;
	__u64 bytes;
	__u64 rejects;
};

#define SIGMA_ENDPOINTS_MAX 65536

#endif
