/* sigma-ts data path: the one layout shared by the sk_msg program (sigma_datapath.bpf.c), the native
 * addon and TypeScript (src/datapath/descriptor.ts mirrors it once; test/descriptor.test.ts parses this
 * file and checks every #define below against the mirror). Fixed width, little-endian, explicit padding.
 * Keep it free of kernel-only and libc-only headers: both clang -target bpf and g++ include it. */
#ifndef SIGMA_DATAPATH_H
#define SIGMA_DATAPATH_H

#include <linux/types.h>

#ifdef __cplusplus
#define SIGMA_STATIC_ASSERT static_assert
#else
#define SIGMA_STATIC_ASSERT _Static_assert
#endif

/* One descriptor: names a buffer in the realm's pool by offset, never by pointer. */
struct sigma_desc {
	__u32 dst_ep;     /* destination endpoint */
	__u32 src_ep;     /* source endpoint: verified (or stamped) by the kernel from the sender's identity */
	__u32 offset;     /* into the realm's pool */
	__u32 length;     /* bytes of payload; for a credit return, the number of credits */
	__u32 generation; /* of the buffer: a stale descriptor names a freed buffer and is rejected */
	__u32 flags;      /* SIGMA_F_* below */
	__u64 request_id;
};
#define SIGMA_DESC_SIZE 32
#define SIGMA_DESC_DST_EP 0
#define SIGMA_DESC_SRC_EP 4
#define SIGMA_DESC_OFFSET 8
#define SIGMA_DESC_LENGTH 12
#define SIGMA_DESC_GENERATION 16
#define SIGMA_DESC_FLAGS 20
#define SIGMA_DESC_REQUEST_ID 24
/* The bytes the verdict reads and writes (everything before request_id). */
#define SIGMA_DESC_HEAD_SIZE 24
/* Writers keep one write (one sendmsg) at most this long. The kernel copies a sendmsg into a bounded
 * number of page fragments and splits a longer one at an arbitrary byte, which can cut a descriptor
 * (then it is passed to the peer, the slow path, instead of being routed). */
#define SIGMA_WRITE_BYTES_MAX 65536
SIGMA_STATIC_ASSERT(sizeof(struct sigma_desc) == SIGMA_DESC_SIZE, "a descriptor is 32 bytes");
SIGMA_STATIC_ASSERT(__builtin_offsetof(struct sigma_desc, flags) == SIGMA_DESC_FLAGS, "flags at 20");
SIGMA_STATIC_ASSERT(__builtin_offsetof(struct sigma_desc, request_id) == SIGMA_DESC_REQUEST_ID, "request_id at 24");

/* Reserved endpoints. 0 is "no endpoint": a sender may leave src_ep 0 and the kernel fills it in.
 * The hub is the node manager's slow path: rejected descriptors and cross-realm copies go there. */
#define SIGMA_NO_EP 0
#define SIGMA_HUB_EP 1
/* Realm 0 is the system (the node manager, the hub): it may send to any endpoint, and any endpoint may
 * send to it. Tenant realms are numbered from 1. */
#define SIGMA_SYSTEM_REALM 0

/* flags, bits 0..15: the data path's protocol, set by senders (src/datapath).
 * bits 16..31: set only by the kernel (the program clears them on entry, so receivers can trust them). */
#define SIGMA_F_CREDIT          0x00000001u /* a credit return: no buffer; length = credits */
#define SIGMA_F_SENDER_MASK     0x0000ffffu
#define SIGMA_F_KERNEL_MASK     0xffff0000u
/* Diverted to the hub because the destination lives in another realm that exported it (or the sender is
 * an exported service replying): the payload must be copied into the destination realm's pool. */
#define SIGMA_F_COPY            0x00010000u
/* Diverted to the hub as a policy violation; the reason code is in bits 24..27. */
#define SIGMA_F_REJECTED        0x80000000u
#define SIGMA_REASON_SHIFT      24
#define SIGMA_REASON_MASK       0x0f000000u
#define SIGMA_R_NONE            0
#define SIGMA_R_NO_IDENTITY     1 /* the sending socket has no identity in SK_STORAGE */
#define SIGMA_R_SRC_SPOOFED     2 /* src_ep is not an endpoint of the sending socket */
#define SIGMA_R_CROSS_REALM     3 /* dst is in another realm and not exported to the sender's */
#define SIGMA_R_UNKNOWN_DST     4 /* dst is not registered */
#define SIGMA_R_DST_GONE        5 /* dst is registered but its socket closed (redirect failed) */
#define SIGMA_R_MAX             5

/* SK_STORAGE value: who a socket is. Written by the node manager (update by socket fd) when it
 * registers the socket; `endpoint` is the socket's own endpoint (the proc host's). */
struct sigma_identity {
	__u32 realm;
	__u32 endpoint;
};
SIGMA_STATIC_ASSERT(sizeof(struct sigma_identity) == 8, "identity is 8 bytes");

/* ep_info value, keyed by endpoint: the realm it lives in, and the endpoint of the socket that carries
 * it (a proc host's socket carries its own endpoint and those of the procs it hosts). Descriptors to an
 * endpoint are redirected to the SOCKHASH entry of its owner_ep; the receiver demultiplexes on dst_ep. */
struct sigma_ep_info {
	__u32 realm;
	__u32 owner_ep;
};
SIGMA_STATIC_ASSERT(sizeof(struct sigma_ep_info) == 8, "endpoint info is 8 bytes");

/* exports key: `dst_ep` is reachable from endpoints of `src_realm` although it lives in another realm
 * (and, the other way round, `dst_ep` may reply to them). Value: a __u32, 1. */
struct sigma_export_key {
	__u32 src_realm;
	__u32 dst_ep;
};
SIGMA_STATIC_ASSERT(sizeof(struct sigma_export_key) == 8, "export key is 8 bytes");

/* Per-CPU counters per sending endpoint (key: the verified src_ep; 0 for sockets without identity). */
struct sigma_metrics {
	__u64 msgs;
	__u64 bytes;
	__u64 rejects;
};
SIGMA_STATIC_ASSERT(sizeof(struct sigma_metrics) == 24, "metrics are 24 bytes");

/* Bound on every map: endpoints (and exports, and metrics rows) per node. */
#define SIGMA_ENDPOINTS_MAX 65536

#endif
