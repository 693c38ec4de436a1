// sk_msg verdict for the sigma data path: every 32-byte descriptor a registered socket sends is
// checked against the sender's kernel-held identity and the realm policy, stamped with the true
// source, and redirected into the destination socket's receive queue. Rejections go to the hub with
// a reason — never SK_DROP, which would make every later write on the socket fail with EACCES.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "sigma_datapath.h"

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SIGMA_ENDPOINTS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sock_by_ep SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sigma_identity);
} identity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SIGMA_ENDPOINTS_MAX);
	__type(key, __u32);
	__type(value, struct sigma_ep_info);
} ep_info SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SIGMA_ENDPOINTS_MAX);
	__type(key, struct sigma_export_key);
	__type(value, __u32);
} exports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, SIGMA_ENDPOINTS_MAX);
	__type(key, __u32);
	__type(value, struct sigma_metrics);
} metrics SEC(".maps");

static __always_inline void count(__u32 ep, __u64 bytes, int rejected)
{
	struct sigma_metrics *m = bpf_map_lookup_elem(&metrics, &ep);
	if (!m) {
		struct sigma_metrics zero = {};
		bpf_map_update_elem(&metrics, &ep, &zero, BPF_NOEXIST);
		m = bpf_map_lookup_elem(&metrics, &ep);
		if (!m)
			return;
	}
	m->msgs += 1;
	m->bytes += bytes;
	if (rejected)
		m->rejects += 1;
}

static __always_inline __u32 policy(const struct sigma_identity *id, __u32 dst)
{
	if (!id)
		return SIGMA_R_NO_IDENTITY;
	struct sigma_ep_info *info = bpf_map_lookup_elem(&ep_info, &dst);
	if (!info)
		return SIGMA_R_UNKNOWN_DST;
	if (info->realm == id->realm || id->realm == SIGMA_SYSTEM_REALM)
		return 0;
	struct sigma_export_key k = { .src_realm = id->realm, .dst_ep = dst };
	if (bpf_map_lookup_elem(&exports, &k))
		return 0;
	return SIGMA_R_CROSS_REALM;
}

SEC("sk_msg")
int sigma_verdict(struct sk_msg_md *msg)
{
	__u32 hub = SIGMA_HUB_EP;

	/* One verdict per descriptor, even when Node coalesces several into one writev. */
	bpf_msg_apply_bytes(msg, SIGMA_DESC_SIZE);
	if (bpf_msg_pull_data(msg, 0, SIGMA_DESC_SIZE, 0))
		return bpf_msg_redirect_hash(msg, &sock_by_ep, &hub, BPF_F_INGRESS);

	void *data = msg->data;
	void *end = msg->data_end;
	if (data + SIGMA_DESC_SIZE > end)
		return bpf_msg_redirect_hash(msg, &sock_by_ep, &hub, BPF_F_INGRESS);

	struct sigma_desc *d = data;
	struct sigma_identity *id = bpf_sk_storage_get(&identity, msg->sk, 0, 0);
	__u32 dst = d->dst_ep;
	__u32 reason = policy(id, dst);

	if (id)
		d->src_ep = id->endpoint; /* receivers trust src: the kernel wrote it */
	count(id ? id->endpoint : 0, SIGMA_DESC_SIZE, reason != 0);
	if (reason) {
		d->flags |= SIGMA_F_REJECTED | reason;
		return bpf_msg_redirect_hash(msg, &sock_by_ep, &hub, BPF_F_INGRESS);
	}
	return bpf_msg_redirect_hash(msg, &sock_by_ep, &dst, BPF_F_INGRESS);
}

char LICENSE[] SEC("license") = "GPL";
