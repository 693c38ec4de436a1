// sigma-sandbox: confines a proc host before Node starts, then execs it.
//
// Every thread of the host inherits what is set here (seccomp filters and Landlock domains are kept
// across execve; a filter installed from inside a running Node would cover one thread only). In order:
// join the host's cgroups, close every fd but the kept ones, start a new session, mount a /proc of
// its own (other uids' processes hidden) and, when asked, a size-capped scratch tmpfs over the writable
// directory (a full disk is the host's own problem), build the Landlock ruleset, drop to the realm's uid and gid
// with no supplementary groups and no capabilities, set no_new_privs, restrict the file system and TCP
// with that ruleset, deny syscalls and socket kinds with seccomp, execve. Any step that fails ends the process with a message and a distinct exit
// code: it never execs unconfined.
//
//   sigma-sandbox --uid U --gid G [--keep-fds N] [--cgroup-procs FILE]... [--ro PATH]... [--rx PATH]...
//                 [--rw PATH]... [--connect-port P]... [--scratch DIR --scratch-mb MB] -- PROGRAM ARGS...
//   sigma-sandbox --probe        one JSON line: what this kernel and user can enforce
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/landlock.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sched.h>
#include <stddef.h>

enum { EXIT_USAGE = 120, EXIT_SETUP = 121, EXIT_IDS = 122, EXIT_LANDLOCK = 123, EXIT_SECCOMP = 124, EXIT_EXEC = 125 };
enum { PATHS_MAX = 256, PORTS_MAX = 16, CGROUPS_MAX = 8 };
enum { SCRATCH_MB_MAX = 1 << 20, SCRATCH_INODES_PER_MB = 64, SCRATCH_INODES_MIN = 1024 };
#define LOW32 0xffffffffULL

// Debian 12's uapi headers predate Landlock ABI 4-6: the bits and fields this program uses, by value.
#define LL_FS_EXECUTE (1ULL << 0)
#define LL_FS_WRITE_FILE (1ULL << 1)
#define LL_FS_READ_FILE (1ULL << 2)
#define LL_FS_READ_DIR (1ULL << 3)
#define LL_FS_ABI1_ALL ((1ULL << 13) - 1)
#define LL_FS_REFER (1ULL << 13)    /* ABI 2 */
#define LL_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#define LL_FILE_RIGHTS (LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)
#define LL_NET_BIND_TCP (1ULL << 0)    /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ULL << 1) /* ABI 4 */
#define LL_SCOPE_ABSTRACT_UNIX (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ULL << 1)        /* ABI 6 */
#define LL_RULE_PATH_BENEATH 1
#define LL_RULE_NET_PORT 2
#define LL_CREATE_RULESET_VERSION (1U << 0)

struct ll_ruleset_attr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};
struct ll_path_beneath_attr {
  uint64_t allowed_access;
  int32_t parent_fd;
} __attribute__((packed));
struct ll_net_port_attr {
  uint64_t allowed_access;
  uint64_t port;
};

struct policy {
  long uid, gid, keep_fds;
  const char *ro[PATHS_MAX], *rx[PATHS_MAX], *rw[PATHS_MAX];
  int n_ro, n_rx, n_rw;
  long ports[PORTS_MAX];
  int n_ports;
  const char *cgroups[CGROUPS_MAX];
  int n_cgroups;
  const char *scratch;
  long scratch_mb;
  char **argv;
};

static void die(int code, const char *what, const char *detail) {
  fprintf(stderr, "sigma-sandbox: %s%s%s%s%s\n", what, detail ? ": " : "", detail ? detail : "", errno ? ": " : "", errno ? strerror(errno) : "");
  exit(code);
}

static long number(const char *s, const char *flag) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < 0) die(EXIT_USAGE, "not a non-negative number", flag);
  return v;
}

static int landlock_abi(void) {
  long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : (int)abi;
}

static void probe(void) {
  int seccomp_ok = prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
  printf("{\"root\":%s,\"landlockAbi\":%d,\"seccomp\":%s}\n", geteuid() == 0 ? "true" : "false", landlock_abi(), seccomp_ok ? "true" : "false");
  exit(0);
}

static void parse(int argc, char **argv, struct policy *p) {
  memset(p, 0, sizeof(*p));
  p->uid = p->gid = -1;
  p->keep_fds = 3;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--probe") == 0) probe();
    if (strcmp(a, "--") == 0) {
      p->argv = argv + i + 1;
      break;
    }
    if (i + 1 >= argc) die(EXIT_USAGE, "a flag without its value", a);
    const char *v = argv[++i];
    if (strcmp(a, "--uid") == 0) p->uid = number(v, a);
    else if (strcmp(a, "--gid") == 0) p->gid = number(v, a);
    else if (strcmp(a, "--keep-fds") == 0) p->keep_fds = number(v, a);
    else if (strcmp(a, "--ro") == 0 && p->n_ro < PATHS_MAX) p->ro[p->n_ro++] = v;
    else if (strcmp(a, "--rx") == 0 && p->n_rx < PATHS_MAX) p->rx[p->n_rx++] = v;
    else if (strcmp(a, "--rw") == 0 && p->n_rw < PATHS_MAX) p->rw[p->n_rw++] = v;
    else if (strcmp(a, "--connect-port") == 0 && p->n_ports < PORTS_MAX) p->ports[p->n_ports++] = number(v, a);
    else if (strcmp(a, "--cgroup-procs") == 0 && p->n_cgroups < CGROUPS_MAX) p->cgroups[p->n_cgroups++] = v;
    else if (strcmp(a, "--scratch") == 0) p->scratch = v;
    else if (strcmp(a, "--scratch-mb") == 0) p->scratch_mb = number(v, a);
    else die(EXIT_USAGE, "unknown flag (or too many of it)", a);
  }
  if (p->argv == NULL || p->argv[0] == NULL) die(EXIT_USAGE, "no program after --", NULL);
  if (p->uid <= 0 || p->gid <= 0) die(EXIT_USAGE, "--uid and --gid are required and must not be 0", NULL);
  if ((p->scratch == NULL) != (p->scratch_mb == 0) || p->scratch_mb > SCRATCH_MB_MAX) die(EXIT_USAGE, "--scratch and --scratch-mb (1 or more) go together", NULL);
}

/** Writes our pid into each cgroup's procs file: the limits hold from before the first instruction of node. */
static void join_cgroups(const struct policy *p) {
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%d\n", getpid());
  for (int i = 0; i < p->n_cgroups; i++) {
    int fd = open(p->cgroups[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, pid, (size_t)n) != n) die(EXIT_SETUP, "cannot join cgroup", p->cgroups[i]);
    close(fd);
  }
}

static void drop_identity(const struct policy *p) {
  // The bounding set and ambient caps go while we still may (CAP_SETPCAP); setuid to non-root then
  // clears the permitted and effective sets.
  for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) die(EXIT_IDS, "cannot drop a capability from the bounding set", NULL);
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) die(EXIT_IDS, "cannot clear ambient capabilities", NULL);
  if (setgroups(0, NULL) != 0) die(EXIT_IDS, "setgroups", NULL);
  if (setresgid((gid_t)p->gid, (gid_t)p->gid, (gid_t)p->gid) != 0) die(EXIT_IDS, "setresgid", NULL);
  if (setresuid((uid_t)p->uid, (uid_t)p->uid, (uid_t)p->uid) != 0) die(EXIT_IDS, "setresuid", NULL);
  if (setuid(0) == 0) die(EXIT_IDS, "root could be regained after dropping it", NULL);
  errno = 0;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die(EXIT_IDS, "no_new_privs", NULL);
}

static void add_path(int ruleset, const char *path, uint64_t rights, uint64_t handled) {
  int fd = open(path, O_PATH | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return; // nothing there to allow: a missing optional path (e.g. /lib64) is fine
    die(EXIT_LANDLOCK, "cannot open a path to allow", path);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) die(EXIT_LANDLOCK, "fstat", path);
  if (!S_ISDIR(st.st_mode)) rights &= LL_FILE_RIGHTS; // a file takes file rights only
  struct ll_path_beneath_attr attr = {.allowed_access = rights & handled, .parent_fd = fd};
  if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &attr, 0) != 0) die(EXIT_LANDLOCK, "landlock_add_rule", path);
  close(fd);
}

/**
 * A /proc of the host's own: a new mount namespace with procfs mounted again, hidepid=invisible, so the
 * host sees its own uid's processes only. (A Landlock rule on /proc/self would name one dentry, which
 * the kernel may prune and rebuild: the host would lose its own /proc.)
 */
static void private_proc(void) {
  if (unshare(CLONE_NEWNS) != 0) die(EXIT_SETUP, "unshare(CLONE_NEWNS)", NULL);
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die(EXIT_SETUP, "making mounts private", NULL);
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible") != 0) die(EXIT_SETUP, "mounting a private /proc", NULL);
}

/**
 * The writable directory as a tmpfs of this host's own, capped in bytes and inodes (its pages count
 * against the host's memory cgroup too): filling it fills nobody else's disk. Mounted before the
 * ruleset is built, so the Landlock rule for the directory names the tmpfs.
 */
static void scratch(const struct policy *p) {
  if (p->scratch == NULL) return;
  char opts[160];
  long inodes = p->scratch_mb * SCRATCH_INODES_PER_MB > SCRATCH_INODES_MIN ? p->scratch_mb * SCRATCH_INODES_PER_MB : SCRATCH_INODES_MIN;
  snprintf(opts, sizeof opts, "size=%ldm,nr_inodes=%ld,mode=0700,uid=%ld,gid=%ld", p->scratch_mb, inodes, p->uid, p->gid);
  if (mount("sigma-scratch", p->scratch, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) die(EXIT_SETUP, "mounting the scratch tmpfs", p->scratch);
}

/** Builds the ruleset while still root, so that paths the realm uid could not even reach can be named. */
static int build_landlock(const struct policy *p) {
  int abi = landlock_abi();
  if (abi < 1) die(EXIT_LANDLOCK, "Landlock is not available in this kernel", NULL);
  struct ll_ruleset_attr attr = {.handled_access_fs = LL_FS_ABI1_ALL};
  if (abi >= 2) attr.handled_access_fs |= LL_FS_REFER;
  if (abi >= 3) attr.handled_access_fs |= LL_FS_TRUNCATE;
  if (abi >= 5) attr.handled_access_fs |= LL_FS_IOCTL_DEV;
  if (abi >= 4) attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
  if (abi >= 6) attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
  size_t size = abi >= 6 ? sizeof attr : abi >= 4 ? offsetof(struct ll_ruleset_attr, scoped) : sizeof(uint64_t);
  int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
  if (ruleset < 0) die(EXIT_LANDLOCK, "landlock_create_ruleset", NULL);
  const uint64_t read = LL_FS_READ_FILE | LL_FS_READ_DIR;
  const uint64_t all = attr.handled_access_fs;
  for (int i = 0; i < p->n_ro; i++) add_path(ruleset, p->ro[i], read, all);
  for (int i = 0; i < p->n_rx; i++) add_path(ruleset, p->rx[i], read | LL_FS_EXECUTE, all);
  for (int i = 0; i < p->n_rw; i++) add_path(ruleset, p->rw[i], all & ~(LL_FS_EXECUTE | LL_FS_IOCTL_DEV), all);
  for (int i = 0; abi >= 4 && i < p->n_ports; i++) {
    struct ll_net_port_attr port = {.allowed_access = LL_NET_CONNECT_TCP, .port = (uint64_t)p->ports[i]};
    if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_NET_PORT, &port, 0) != 0) die(EXIT_LANDLOCK, "landlock_add_rule (port)", NULL);
  }
  return ruleset;
}

/** Enforces it (no_new_privs is set by now, so an unprivileged process may). */
static void restrict_self(int ruleset) {
  if (syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) die(EXIT_LANDLOCK, "landlock_restrict_self", NULL);
  close(ruleset);
}

static void deny(scmp_filter_ctx ctx, int nr, unsigned cmps, struct scmp_arg_cmp *cmp) {
  if (seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EPERM), nr, cmps, cmp) != 0) die(EXIT_SECCOMP, "seccomp_rule_add", seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr));
}

/** Socket families a host may open (the data path is inherited; NATS is TCP; Node's IPC is AF_UNIX). */
static int family_allowed(int f) { return f == AF_UNIX || f == AF_INET || f == AF_INET6; }

static void apply_seccomp(void) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == NULL) die(EXIT_SECCOMP, "seccomp_init", NULL);
  const int denied[] = {
      SCMP_SYS(ptrace), SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev), SCMP_SYS(bpf), SCMP_SYS(perf_event_open),
      SCMP_SYS(mount), SCMP_SYS(umount2), SCMP_SYS(pivot_root), SCMP_SYS(chroot), SCMP_SYS(unshare), SCMP_SYS(setns),
      SCMP_SYS(keyctl), SCMP_SYS(add_key), SCMP_SYS(request_key), SCMP_SYS(userfaultfd), SCMP_SYS(io_uring_setup),
      SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register), SCMP_SYS(kexec_load), SCMP_SYS(kexec_file_load),
      SCMP_SYS(init_module), SCMP_SYS(finit_module), SCMP_SYS(delete_module), SCMP_SYS(open_by_handle_at),
      SCMP_SYS(swapon), SCMP_SYS(swapoff), SCMP_SYS(reboot), SCMP_SYS(acct), SCMP_SYS(fsopen), SCMP_SYS(fsmount),
      SCMP_SYS(move_mount), SCMP_SYS(open_tree), SCMP_SYS(pidfd_getfd),
  };
  for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) deny(ctx, denied[i], 0, NULL);
  // clone3 hides its flags behind a pointer: ENOSYS makes libc fall back to clone, whose flags we see.
  if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0) die(EXIT_SECCOMP, "seccomp_rule_add", "clone3");
  const uint64_t ns_flags[] = {CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWCGROUP};
  for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0]; i++) {
    struct scmp_arg_cmp c = SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]);
    deny(ctx, SCMP_SYS(clone), 1, &c);
  }
  const int socket_calls[] = {SCMP_SYS(socket), SCMP_SYS(socketpair)};
  for (size_t s = 0; s < 2; s++) {
    for (int f = 0; f < AF_MAX; f++) {
      if (family_allowed(f)) continue;
      // The kernel reads an int: compare the low 32 bits only, or 0x1_0000_0002 would pass as not-AF_INET.
      struct scmp_arg_cmp c = SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, (uint64_t)f);
      deny(ctx, socket_calls[s], 1, &c);
    }
    // IP: streams only (no UDP, raw or packet sockets); the type word carries SOCK_NONBLOCK/CLOEXEC above 0xf.
    const int ip[] = {AF_INET, AF_INET6};
    const int types[] = {SOCK_DGRAM, SOCK_RAW, SOCK_RDM, SOCK_SEQPACKET, SOCK_DCCP, SOCK_PACKET};
    for (size_t f = 0; f < 2; f++)
      for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        struct scmp_arg_cmp c[2] = {SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, (uint64_t)ip[f]), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, (uint64_t)types[t])};
        deny(ctx, socket_calls[s], 2, c);
      }
    // IP streams speak TCP only (protocol 0 or IPPROTO_TCP): Landlock's TCP rules do not cover MPTCP
    // (protocol 262), whose connects would go anywhere. A protocol with bits above 32 is refused too.
    for (size_t f = 0; f < 2; f++) {
      struct scmp_arg_cmp above[2] = {SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, (uint64_t)ip[f]), SCMP_A2(SCMP_CMP_GT, IPPROTO_TCP)};
      deny(ctx, socket_calls[s], 2, above);
      for (uint64_t proto = 1; proto < IPPROTO_TCP; proto++) {
        struct scmp_arg_cmp below[2] = {SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, (uint64_t)ip[f]), SCMP_A2(SCMP_CMP_EQ, proto)};
        deny(ctx, socket_calls[s], 2, below);
      }
    }
  }
  if (seccomp_load(ctx) != 0) die(EXIT_SECCOMP, "seccomp_load", NULL);
  seccomp_release(ctx);
}

int main(int argc, char **argv) {
  struct policy p;
  parse(argc, argv, &p);
  join_cgroups(&p);
  if (syscall(SYS_close_range, (unsigned)p.keep_fds, ~0U, 0) != 0) die(EXIT_SETUP, "close_range", NULL);
  if (setsid() < 0) die(EXIT_SETUP, "setsid", NULL);
  private_proc();
  scratch(&p);
  int ruleset = build_landlock(&p);
  drop_identity(&p);
  restrict_self(ruleset);
  apply_seccomp();
  execv(p.argv[0], p.argv);
  die(EXIT_EXEC, "execv", p.argv[0]);
}
