// sk_msg verdict for the sigma data path. Every 32-byte descriptor a registered socket sends is checked
// against the sender's kernel-held identity and the realm policy, its source is verified (or filled in),
// and it is redirected into the destination socket's receive queue. Everything else is diverted to the
// hub with a reason in the flags — never SK_DROP: one SK_DROP makes every later write on the socket fail
// with EACCES, so a single bad descriptor would cut a whole proc host off. What the program cannot
// inspect (a write split inside a descriptor) or cannot divert (no hub) passes to the socket's peer, the
// node manager's end of the connection, which knows which socket it came from.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "sigma_datapath.h"

// Socket endpoint -> socket: each registered socket once, under its own endpoint (a socket can sit in a
// map with an sk_msg program only once: a second key is EBUSY). Hosted endpoints reach it via ep_info.
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SIGMA_ENDPOINTS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sock_by_ep SEC(".maps");

// Socket -> who it is. bpf_get_socket_cookie is not available to sk_msg; socket-local storage is, and
// only the node manager (root) can write it, so the identity is kernel-enforced.
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sigma_identity);
} identity SEC(".maps");

// Endpoint id -> its realm and the socket endpoint that carries it.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SIGMA_ENDPOINTS_MAX);
	__type(key, __u32);
	__type(value, struct sigma_ep_info);
} ep_info SEC(".maps");

// (realm, endpoint) pairs that cross a realm boundary on purpose.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SIGMA_ENDPOINTS_MAX);
	__type(key, struct sigma_export_key);
	__type(value, __u32);
} exports SEC(".maps");

// Per sending endpoint, per CPU (no atomics on the hot path; userspace sums the CPUs).
// Not preallocated: a preallocated per-CPU hash costs entries x CPUs x 24 bytes up front.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SIGMA_ENDPOINTS_MAX);
	__type(key, __u32);
	__type(value, struct sigma_metrics);
} metrics SEC(".maps");

static __always_inline void count(__u32 ep, int rejected)
{
	struct sigma_metrics *m = bpf_map_lookup_elem(&metrics, &ep);
	if (!m) {
		struct sigma_metrics zero = {};
		// Fails only when the map is full: then this endpoint goes uncounted, traffic is unaffected.
		bpf_map_update_elem(&metrics, &ep, &zero, BPF_NOEXIST);
		m = bpf_map_lookup_elem(&metrics, &ep);
		if (!m)
			return;
	}
	m->msgs += 1;
	m->bytes += SIGMA_DESC_SIZE;
	if (rejected)
		m->rejects += 1;
}

// To the hub with `flags` added. If no hub is registered the redirect fails, and SK_PASS hands the bytes
// to the socket's peer (the node manager's sink) — still not SK_DROP.
static __always_inline int divert(struct sk_msg_md *msg, struct sigma_desc *d, __u32 flags)
{
	__u32 hub = SIGMA_HUB_EP;

	d->flags |= flags;
	bpf_msg_redirect_hash(msg, &sock_by_ep, &hub, BPF_F_INGRESS);
	return SK_PASS;
}

// Uninspectable (a split header, or no memory to linearize it): the socket's peer gets it, unchanged.
// Counted as a reject of the sending socket.
static __always_inline int to_peer(struct sk_msg_md *msg)
{
	struct sigma_identity *id = bpf_sk_storage_get(&identity, msg->sk, 0, 0);

	count(id ? id->endpoint : SIGMA_NO_EP, 1);
	return SK_PASS;
}

static __always_inline int reject(struct sk_msg_md *msg, struct sigma_desc *d, __u32 counted_ep, __u32 reason)
{
	count(counted_ep, 1);
	return divert(msg, d, SIGMA_F_REJECTED | (reason << SIGMA_REASON_SHIFT));
}

// The source the descriptor may carry: the socket's own endpoint (also for 0, "fill it in"), or an
// endpoint of the same realm that this socket carries. 0 means spoofed. The system realm (the hub
// forwarding a cross-realm copy on a sender's behalf) may name any source.
static __always_inline __u32 verified_src(const struct sigma_identity *id, __u32 claimed)
{
	if (claimed == SIGMA_NO_EP || claimed == id->endpoint)
		return id->endpoint;
	if (id->realm == SIGMA_SYSTEM_REALM)
		return claimed;
	struct sigma_ep_info *info = bpf_map_lookup_elem(&ep_info, &claimed);
	if (!info || info->owner_ep != id->endpoint || info->realm != id->realm)
		return SIGMA_NO_EP;
	return claimed;
}

static __always_inline int exported(__u32 realm, __u32 ep)
{
	struct sigma_export_key k = { .src_realm = realm, .dst_ep = ep };
	return bpf_map_lookup_elem(&exports, &k) != 0;
}

SEC("sk_msg")
int sigma_verdict(struct sk_msg_md *msg)
{
	// One verdict per descriptor, even when Node coalesces several into one writev. The verdict holds
	// for the next 32 bytes even across writes, so a descriptor split between two writes stays whole.
	bpf_msg_apply_bytes(msg, SIGMA_DESC_SIZE);
	// Fewer than the 24 bytes the verdict needs (a write split inside a descriptor): pass it, and the
	// rest of the descriptor after it, to the socket's peer — the node manager's end, which knows the
	// sender and judges in userspace. (Not bpf_msg_cork_bytes: when a cork completes with more bytes than
	// the verdict applies to, the kernel frees the surplus — descriptors vanish.)
	if (msg->size < SIGMA_DESC_HEAD_SIZE || bpf_msg_pull_data(msg, 0, SIGMA_DESC_HEAD_SIZE, 0))
		return to_peer(msg);
	void *data = (void *)(long)msg->data;
	void *end = (void *)(long)msg->data_end;
	if (data + SIGMA_DESC_HEAD_SIZE > end)
		return to_peer(msg);
	struct sigma_desc *d = data;
	d->flags &= SIGMA_F_SENDER_MASK; // kernel bits are ours: a sender cannot forge a verdict

	struct sigma_identity *id = bpf_sk_storage_get(&identity, msg->sk, 0, 0);
	if (!id) {
		d->src_ep = SIGMA_NO_EP;
		return reject(msg, d, SIGMA_NO_EP, SIGMA_R_NO_IDENTITY);
	}
	__u32 src = verified_src(id, d->src_ep);
	if (!src) {
		d->src_ep = id->endpoint; // the hub learns who really sent it
		return reject(msg, d, id->endpoint, SIGMA_R_SRC_SPOOFED);
	}
	d->src_ep = src; // receivers trust src: the kernel checked or wrote it

	__u32 dst = d->dst_ep;
	struct sigma_ep_info *info = bpf_map_lookup_elem(&ep_info, &dst);
	if (!info)
		return reject(msg, d, src, SIGMA_R_UNKNOWN_DST);
	__u32 same = info->realm == id->realm || info->realm == SIGMA_SYSTEM_REALM || id->realm == SIGMA_SYSTEM_REALM;
	if (!same) {
		// Exported to the sender's realm, or the sender is exported to dst's realm (a reply).
		if (!exported(id->realm, dst) && !exported(info->realm, src))
			return reject(msg, d, src, SIGMA_R_CROSS_REALM);
		// A buffer lives in its realm's pool: data crosses realms by a copy the hub makes.
		if (!(d->flags & SIGMA_F_CREDIT)) {
			count(src, 0);
			return divert(msg, d, SIGMA_F_COPY);
		}
	}
	__u32 owner = info->owner_ep; // the socket that carries dst
	if (bpf_msg_redirect_hash(msg, &sock_by_ep, &owner, BPF_F_INGRESS) != SK_PASS)
		return reject(msg, d, src, SIGMA_R_DST_GONE); // registered, but its socket closed
	count(src, 0);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
