/*
 * linuxbench: the Linux side of `cargo xtask bench`. Built static on the host
 * by xtask/src/bench/linux.rs and run as the only program (besides busybox)
 * in the reference guest's initramfs.
 *
 * Every figure is the median of per-operation times measured with
 * clock_gettime(CLOCK_MONOTONIC). Under TCG these are emulation times: only
 * their ratio to Kintsugi's figures for the same operations means anything.
 *
 * Output, one line per figure (parsed by linux.rs):
 *   BENCH <name> <nanoseconds>
 * and on failure a line "BENCH-ERROR <what>" and exit status 1.
 *
 * Usage: linuxbench <path of a static program that exits 0 at once>
 *        linuxbench devices <MiB> <frames> [<disk>]
 *                                            (the device benchmarks on the
 *                                             data disk /dev/<disk>, vda by
 *                                             default; see "Devices" below)
 *        linuxbench fs <MiB> <files> <reads> <reps>
 *                                            (the file-system benchmarks,
 *                                             see "File system" below)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Samples behind each median. */
#define SYSCALL_BATCHES 2000
#define SYSCALLS_PER_BATCH 50
#define CLOCK_BATCHES 2000
#define CLOCK_READS_PER_BATCH 50
#define PIPE_WARMUP 200
#define PIPE_ROUND_TRIPS 2000
#define SPAWN_WARMUP 10
#define SPAWNS 200

static double samples[PIPE_ROUND_TRIPS > SYSCALL_BATCHES ? PIPE_ROUND_TRIPS : SYSCALL_BATCHES];

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void fail(const char *what)
{
    printf("BENCH-ERROR %s: %s\n", what, strerror(errno));
    exit(1);
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof v[0], compare_doubles);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

static void report(const char *name, double ns)
{
    printf("BENCH %s %.1f\n", name, ns);
    fflush(stdout);
}

/* Cost of one clock read, to judge the timer's share in single-op samples. */
static double bench_clock_read(void)
{
    for (int b = 0; b < CLOCK_BATCHES; b++) {
        double t0 = now_ns();
        for (int i = 0; i < CLOCK_READS_PER_BATCH; i++)
            now_ns();
        samples[b] = (now_ns() - t0) / CLOCK_READS_PER_BATCH;
    }
    return median(samples, CLOCK_BATCHES);
}

/* A trivial system call: getppid through syscall(2), so no libc caching. */
static double bench_null_syscall(void)
{
    for (int b = 0; b < SYSCALL_BATCHES; b++) {
        double t0 = now_ns();
        for (int i = 0; i < SYSCALLS_PER_BATCH; i++)
            syscall(SYS_getppid);
        samples[b] = (now_ns() - t0) / SYSCALLS_PER_BATCH;
    }
    return median(samples, SYSCALL_BATCHES);
}

/* Child side of the pipe test: echo each byte back until end of file. */
static void echo_bytes(int in, int out)
{
    char c;
    while (read(in, &c, 1) == 1)
        if (write(out, &c, 1) != 1)
            _exit(1);
    _exit(0);
}

static void round_trip(int to_child, int from_child)
{
    char c = 'x';
    if (write(to_child, &c, 1) != 1)
        fail("pipe write");
    if (read(from_child, &c, 1) != 1)
        fail("pipe read");
}

/* One byte to another process over one pipe and back over a second. */
static double bench_pipe_round_trip(void)
{
    int down[2], up[2];
    if (pipe(down) || pipe(up))
        fail("pipe");
    pid_t child = fork();
    if (child < 0)
        fail("fork");
    if (child == 0) {
        close(down[1]);
        close(up[0]);
        echo_bytes(down[0], up[1]);
    }
    close(down[0]);
    close(up[1]);
    for (int i = 0; i < PIPE_WARMUP; i++)
        round_trip(down[1], up[0]);
    for (int i = 0; i < PIPE_ROUND_TRIPS; i++) {
        double t0 = now_ns();
        round_trip(down[1], up[0]);
        samples[i] = now_ns() - t0;
    }
    close(down[1]);
    close(up[0]);
    waitpid(child, NULL, 0);
    return median(samples, PIPE_ROUND_TRIPS);
}

static void reap_successful(pid_t pid, const char *what)
{
    int status;
    if (waitpid(pid, &status, 0) != pid)
        fail(what);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("BENCH-ERROR %s: did not exit with status 0 (wait status %#x)\n", what, status);
        exit(1);
    }
}

static void spawn_once(const char *program)
{
    char *argv[] = {(char *)program, NULL};
    pid_t pid;
    int err = posix_spawn(&pid, program, NULL, NULL, argv, environ);
    if (err) {
        errno = err;
        fail("posix_spawn");
    }
    reap_successful(pid, "posix_spawn child");
}

static void fork_exec_once(const char *program)
{
    char *argv[] = {(char *)program, NULL};
    pid_t pid = fork();
    if (pid < 0)
        fail("fork");
    if (pid == 0) {
        execve(program, argv, environ);
        _exit(127);
    }
    reap_successful(pid, "fork+exec child");
}

/* Start `program` with `start_once` and wait for it to exit. */
static double bench_start_program(const char *program, void (*start_once)(const char *))
{
    for (int i = 0; i < SPAWN_WARMUP; i++)
        start_once(program);
    for (int i = 0; i < SPAWNS; i++) {
        double t0 = now_ns();
        start_once(program);
        samples[i] = now_ns() - t0;
    }
    return median(samples, SPAWNS);
}

/* ---- Devices ------------------------------------------------------------
 *
 * The same operations as Kintsugi's blkbench and nicbench programs
 * (services/blk/src/bin/blkbench.rs, services/nic/src/bin/nicbench.rs), on
 * the same QEMU devices (a virtio-blk-pci data disk, /dev/vda, and a
 * virtio-net-pci card; or an AHCI data disk, /dev/sda, and an e1000 card;
 * the card on a dgram netdev), printing the same figure names. DISK below
 * is the data disk's name (the optional last argument, vda by default); its
 * serial must be kintsugi-disk0:
 *
 * - blk_seq_write_mib_s, blk_seq_read_mib_s: busybox dd of MiB MiB in
 *   64 KiB blocks to and from /dev/DISK with O_DIRECT (oflag=direct plus
 *   conv=fsync, which flushes the disk at the end as blkbench does;
 *   iflag=direct), timed here around the dd process; the disk's own
 *   counters (/sys/block/DISK/stat) must show every sector moved;
 * - blk_rand_read_iops, blk_rand_write_iops: 256 rounds of 16 random 4 KiB
 *   reads, then of writes, with Linux AIO (io_submit of 16, io_getevents
 *   of all 16) on /dev/DISK opened O_DIRECT, at the offsets blkbench's
 *   generator picks (same generator, seed and region);
 * - nic_tx_fps: frames of 1514 bytes sent through an AF_PACKET socket on
 *   eth0 with sendmmsg, 32 per call;
 * - nic_rx_fps: after a READY frame to the host, frames of EtherType
 *   0x88b5 received with recvmmsg, up to 32 per call, until all arrived
 *   or 5 s passed without one; nic_rx_dropped_in_guest is what the kernel
 *   dropped at the socket (PACKET_STATISTICS).
 */

#define DEFAULT_DISK "vda"
#define DISK_NAME_MAX 32
#define BLK_SERIAL "kintsugi-disk0"
#define SECTOR 512
#define SEQ_BLOCK (64 * 1024)
#define RAND_QUEUE 16
#define RAND_SECTORS 8
#define RAND_ROUNDS 256

#define NIC_IFNAME "eth0"
#define NIC_FRAME 1514
#define NIC_BATCH 32
#define NIC_TX_ETHERTYPE 0x88b6
#define NIC_RX_ETHERTYPE 0x88b5
#define NIC_SILENCE_NS 5e9

static void fail_msg(const char *what)
{
    printf("BENCH-ERROR %s\n", what);
    exit(1);
}

/* The data disk's name in /dev and /sys/block (letters and digits). */
static char blk_disk[DISK_NAME_MAX] = DEFAULT_DISK;
/* Its device node, /dev/<blk_disk> (set by use_disk). */
static char blk_device[DISK_NAME_MAX + 8] = "/dev/" DEFAULT_DISK;

/* Measure the disk called `name` (vda, sda, ...). */
static void use_disk(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len >= DISK_NAME_MAX)
        fail_msg("the disk name must be 1 to 31 letters and digits");
    for (size_t i = 0; i < len; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9')))
            fail_msg("the disk name must be 1 to 31 letters and digits");
    memcpy(blk_disk, name, len + 1);
    snprintf(blk_device, sizeof blk_device, "/dev/%s", blk_disk);
}

/* The disk's serial number from sysfs: virtio-blk's `serial` file, or for
 * a SCSI disk (an ATA disk behind libata is one) the unit serial number
 * page, `device/vpd_pg80` (VPD page 0x80: a 4-byte header with the length
 * in bytes 2-3, then the serial, which libata pads with spaces). */
static void disk_serial(char *serial, size_t size)
{
    char path[96];
    unsigned char page[256];
    serial[0] = 0;
    snprintf(path, sizeof path, "/sys/block/%s/serial", blk_disk);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(serial, size, f))
            fail(path);
        fclose(f);
        serial[strcspn(serial, "\n")] = 0;
        return;
    }
    snprintf(path, sizeof path, "/sys/block/%s/device/vpd_pg80", blk_disk);
    f = fopen(path, "r");
    if (!f) {
        printf("BENCH-ERROR /sys/block/%s has neither serial nor device/vpd_pg80\n", blk_disk);
        exit(1);
    }
    size_t got = fread(page, 1, sizeof page, f);
    fclose(f);
    if (got < 4 || page[1] != 0x80)
        fail_msg("vpd_pg80 is not a unit serial number page");
    size_t len = ((size_t)page[2] << 8) | page[3];
    if (len > got - 4)
        len = got - 4;
    const unsigned char *s = page + 4;
    while (len && *s == ' ')
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == 0))
        len--;
    if (len >= size)
        len = size - 1;
    memcpy(serial, s, len);
    serial[len] = 0;
}

/* Stop unless the disk is the data disk (serial BLK_SERIAL). */
static void check_data_disk(void)
{
    char serial[64];
    disk_serial(serial, sizeof serial);
    if (strcmp(serial, BLK_SERIAL)) {
        printf("BENCH-ERROR %s is %s, not the data disk " BLK_SERIAL "\n", blk_device, serial);
        exit(1);
    }
}

/* Run busybox with `argv` (argv[0] is the applet), return the seconds it took. */
static double run_busybox(char *const argv[])
{
    char *full[16] = {"busybox"};
    int n = 1;
    for (int i = 0; argv[i] && n < 15; i++)
        full[n++] = argv[i];
    full[n] = NULL;
    double t0 = now_ns();
    pid_t pid;
    int err = posix_spawn(&pid, "/bin/busybox", NULL, NULL, full, environ);
    if (err) {
        errno = err;
        fail("posix_spawn busybox");
    }
    reap_successful(pid, argv[0]);
    return (now_ns() - t0) / 1e9;
}

/* Sectors the disk has read and written so far (/sys/block/DISK/stat). */
static void disk_sectors(uint64_t *read, uint64_t *written)
{
    unsigned long long f[7];
    char path[96];
    snprintf(path, sizeof path, "/sys/block/%s/stat", blk_disk);
    FILE *st = fopen(path, "r");
    if (!st || fscanf(st, "%llu %llu %llu %llu %llu %llu %llu", &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6]) != 7)
        fail(path);
    fclose(st);
    *read = f[2];
    *written = f[6];
}

/* blkbench's generator (xorshift64*). */
static uint64_t rng_state = 0x00c0ffee;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

/* RAND_QUEUE distinct page-aligned sector numbers below pages * RAND_SECTORS. */
static void random_extents(uint64_t pages, uint64_t *lbas)
{
    int n = 0;
    while (n < RAND_QUEUE) {
        uint64_t lba = (rng_next() % pages) * RAND_SECTORS;
        int seen = 0;
        for (int i = 0; i < n; i++)
            seen |= lbas[i] == lba;
        if (!seen)
            lbas[n++] = lba;
    }
}

/* RAND_ROUNDS rounds of RAND_QUEUE 4 KiB operations in flight; seconds. */
static double random_io(int fd, uint64_t pages, int write, unsigned char *buf)
{
    aio_context_t ctx = 0;
    if (syscall(SYS_io_setup, RAND_QUEUE, &ctx) < 0)
        fail("io_setup");
    struct iocb cbs[RAND_QUEUE];
    struct iocb *ptrs[RAND_QUEUE];
    struct io_event events[RAND_QUEUE];
    uint64_t lbas[RAND_QUEUE];
    double t0 = now_ns();
    for (int round = 0; round < RAND_ROUNDS; round++) {
        random_extents(pages, lbas);
        for (int i = 0; i < RAND_QUEUE; i++) {
            memset(&cbs[i], 0, sizeof cbs[i]);
            cbs[i].aio_fildes = fd;
            cbs[i].aio_lio_opcode = write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
            cbs[i].aio_buf = (uint64_t)(uintptr_t)(buf + i * RAND_SECTORS * SECTOR);
            cbs[i].aio_nbytes = RAND_SECTORS * SECTOR;
            cbs[i].aio_offset = (int64_t)(lbas[i] * SECTOR);
            cbs[i].aio_data = i;
            ptrs[i] = &cbs[i];
        }
        for (int done = 0; done < RAND_QUEUE;) {
            long n = syscall(SYS_io_submit, ctx, RAND_QUEUE - done, ptrs + done);
            if (n <= 0) {
                if (n < 0 && errno == EINTR)
                    continue;
                fail("io_submit");
            }
            done += n;
        }
        for (int reaped = 0; reaped < RAND_QUEUE;) {
            long n = syscall(SYS_io_getevents, ctx, RAND_QUEUE - reaped, RAND_QUEUE - reaped, events, NULL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                fail("io_getevents");
            }
            for (long i = 0; i < n; i++)
                if (events[i].res != RAND_SECTORS * SECTOR) {
                    printf("BENCH-ERROR random %s: result %lld\n", write ? "write" : "read", (long long)events[i].res);
                    exit(1);
                }
            reaped += n;
        }
    }
    double seconds = (now_ns() - t0) / 1e9;
    syscall(SYS_io_destroy, ctx);
    return seconds;
}

static void bench_blk(long mib)
{
    check_data_disk();
    int fd = open(blk_device, O_RDWR | O_DIRECT);
    if (fd < 0)
        fail(blk_device);
    uint64_t bytes;
    if (ioctl(fd, BLKGETSIZE64, &bytes))
        fail("BLKGETSIZE64");
    uint64_t total = (uint64_t)mib * 1024 * 1024 / SECTOR;
    if (total > bytes / SECTOR)
        total = bytes / SECTOR;
    uint64_t blocks = total * SECTOR / SEQ_BLOCK;

    char count[32], of[sizeof blk_device + 3], in[sizeof blk_device + 3];
    snprintf(count, sizeof count, "count=%llu", (unsigned long long)blocks);
    snprintf(of, sizeof of, "of=%s", blk_device);
    snprintf(in, sizeof in, "if=%s", blk_device);
    char *write_argv[] = {"dd", "if=/dev/zero", of, "bs=64k", count, "oflag=direct", "conv=notrunc,fsync", NULL};
    char *read_argv[] = {"dd", in, "of=/dev/null", "bs=64k", count, "iflag=direct", NULL};
    double mib_done = (double)blocks * SEQ_BLOCK / (1024.0 * 1024.0);
    uint64_t read0, written0, read1, written1;
    disk_sectors(&read0, &written0);
    double write_s = run_busybox(write_argv);
    double read_s = run_busybox(read_argv);
    disk_sectors(&read1, &written1);
    if (read1 - read0 < blocks * SEQ_BLOCK / SECTOR || written1 - written0 < blocks * SEQ_BLOCK / SECTOR) {
        printf("BENCH-ERROR dd moved %llu sectors in and %llu out, not %llu each\n", (unsigned long long)(read1 - read0),
               (unsigned long long)(written1 - written0), (unsigned long long)(blocks * SEQ_BLOCK / SECTOR));
        exit(1);
    }
    report("blk_seq_write_mib_s", mib_done / write_s);
    report("blk_seq_read_mib_s", mib_done / read_s);

    unsigned char *buf;
    if (posix_memalign((void **)&buf, 4096, RAND_QUEUE * RAND_SECTORS * SECTOR))
        fail_msg("posix_memalign");
    memset(buf, 0xa5, RAND_QUEUE * RAND_SECTORS * SECTOR);
    uint64_t pages = total / RAND_SECTORS;
    double ops = RAND_ROUNDS * RAND_QUEUE;
    report("blk_rand_read_iops", ops / random_io(fd, pages, 0, buf));
    report("blk_rand_write_iops", ops / random_io(fd, pages, 1, buf));
    free(buf);
    close(fd);
}

/* Bring eth0 up (IPv6 off, so the kernel sends nothing of its own) and
 * wait for its carrier; its interface index. */
static int nic_up(void)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", NIC_IFNAME);
    int v6 = open(path, O_WRONLY);
    if (v6 >= 0) {
        if (write(v6, "1\n", 2) != 2)
            printf("LINUXBENCH-INFO cannot disable IPv6 on " NIC_IFNAME "\n");
        close(v6);
    }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0)
        fail("socket AF_INET");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, NIC_IFNAME, IFNAMSIZ - 1);
    if (ioctl(s, SIOCGIFFLAGS, &ifr))
        fail("SIOCGIFFLAGS " NIC_IFNAME);
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr))
        fail("SIOCSIFFLAGS " NIC_IFNAME);
    close(s);
    int index = if_nametoindex(NIC_IFNAME);
    if (!index)
        fail("if_nametoindex " NIC_IFNAME);
    snprintf(path, sizeof path, "/sys/class/net/%s/carrier", NIC_IFNAME);
    for (int i = 0; i < 500; i++) {
        char c = '0';
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            if (read(fd, &c, 1) != 1)
                c = '0';
            close(fd);
        }
        if (c == '1')
            return index;
        usleep(10000);
    }
    fail_msg(NIC_IFNAME " has no carrier after 5 s");
    return -1;
}

/* A frame from `mac` to everyone: EtherType NIC_TX_ETHERTYPE, `payload`, filler to `len`. */
static void make_frame(unsigned char *f, const unsigned char *mac, const void *payload, size_t plen, size_t len)
{
    memset(f, 0xff, 6);
    memcpy(f + 6, mac, 6);
    f[12] = NIC_TX_ETHERTYPE >> 8;
    f[13] = NIC_TX_ETHERTYPE & 0xff;
    memcpy(f + 14, payload, plen);
    for (size_t i = 14 + plen; i < len; i++)
        f[i] = (unsigned char)i;
}

/* Send `count` messages of `msgs`, retrying while the kernel is out of buffers. */
static void send_all(int s, struct mmsghdr *msgs, unsigned count)
{
    for (unsigned done = 0; done < count;) {
        int n = sendmmsg(s, msgs + done, count - done, 0);
        if (n < 0) {
            if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) {
                sched_yield();
                continue;
            }
            fail("sendmmsg");
        }
        done += n;
    }
}

static void bench_nic(long frames)
{
    int index = nic_up();
    /* Protocol 0: this socket only sends, so the kernel copies no outgoing frame back to it. */
    int tx = socket(AF_PACKET, SOCK_RAW, 0);
    if (tx < 0)
        fail("socket AF_PACKET");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, NIC_IFNAME, IFNAMSIZ - 1);
    if (ioctl(tx, SIOCGIFHWADDR, &ifr))
        fail("SIOCGIFHWADDR");
    unsigned char mac[6];
    memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_protocol = htons(NIC_TX_ETHERTYPE), .sll_ifindex = index};

    /* Transmit: one call's worth of frames built before the clock starts. */
    static unsigned char batch[NIC_BATCH][NIC_FRAME];
    static struct iovec iov[NIC_BATCH];
    static struct mmsghdr msgs[NIC_BATCH];
    for (uint32_t i = 0; i < NIC_BATCH; i++) {
        unsigned char payload[8] = {'K', 'B', 'T', 'X', i, i >> 8, i >> 16, i >> 24};
        make_frame(batch[i], mac, payload, sizeof payload, NIC_FRAME);
        iov[i] = (struct iovec){batch[i], NIC_FRAME};
        msgs[i].msg_hdr = (struct msghdr){.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iov[i], .msg_iovlen = 1};
    }
    double t0 = now_ns();
    for (long sent = 0; sent < frames;) {
        unsigned n = frames - sent < NIC_BATCH ? frames - sent : NIC_BATCH;
        send_all(tx, msgs, n);
        sent += n;
    }
    report("nic_tx_fps", frames / ((now_ns() - t0) / 1e9));
    report("nic_tx_frames", frames);

    /* Receive: open the socket, tell the host, count what arrives. */
    int rx = socket(AF_PACKET, SOCK_RAW, htons(NIC_RX_ETHERTYPE));
    if (rx < 0)
        fail("socket AF_PACKET (receive)");
    struct sockaddr_ll here = {.sll_family = AF_PACKET, .sll_protocol = htons(NIC_RX_ETHERTYPE), .sll_ifindex = index};
    if (bind(rx, (struct sockaddr *)&here, sizeof here))
        fail("bind AF_PACKET");
    struct timeval wait = {.tv_sec = 1};
    if (setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait))
        fail("SO_RCVTIMEO");
    unsigned char ready[60];
    make_frame(ready, mac, "READY", 5, sizeof ready);
    struct iovec ready_iov = {ready, sizeof ready};
    struct mmsghdr ready_msg = {.msg_hdr = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &ready_iov, .msg_iovlen = 1}};
    send_all(tx, &ready_msg, 1);
    for (int i = 0; i < NIC_BATCH; i++)
        msgs[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
    long got = 0, first_batch = 0;
    double first = 0, last = 0, waiting_since = now_ns();
    while (got < frames) {
        int n = recvmmsg(rx, msgs, NIC_BATCH, MSG_WAITFORONE, NULL);
        double now = now_ns();
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            fail("recvmmsg");
        if (n <= 0) {
            if (now - waiting_since > NIC_SILENCE_NS)
                break;
            continue;
        }
        if (got == 0) {
            first = now;
            first_batch = n;
        }
        got += n;
        last = now;
        waiting_since = now;
    }
    report("nic_rx_fps", last > first ? (got - first_batch) / ((last - first) / 1e9) : 0.0);
    report("nic_rx_frames", got);
    struct tpacket_stats stats;
    socklen_t len = sizeof stats;
    if (getsockopt(rx, SOL_PACKET, PACKET_STATISTICS, &stats, &len))
        fail("PACKET_STATISTICS");
    report("nic_rx_dropped_in_guest", stats.tp_drops);
    close(rx);
    close(tx);
}

static void bench_devices(int argc, char **argv)
{
    char *end1, *end2;
    int good_argc = argc == 4 || argc == 5;
    long mib = good_argc ? strtol(argv[2], &end1, 10) : 0;
    long frames = good_argc ? strtol(argv[3], &end2, 10) : 0;
    if (!good_argc || *end1 || *end2 || mib <= 0 || frames <= 0)
        fail_msg("usage: linuxbench devices MIB FRAMES [DISK]");
    if (argc == 5)
        use_disk(argv[4]);
    bench_blk(mib);
    bench_nic(frames);
}

/* ---- File system --------------------------------------------------------
 *
 * The same operations as Kintsugi's fsbench program
 * (services/fs/src/bin/fsbench.rs), on the FAT32 data disk (/dev/vda, the
 * same kind of image) mounted with vfat at /mnt, printing the same figure
 * names (the median over the repetitions). Each repetition:
 *
 * - fs_seq_write_mib_s: open /mnt/fsbench/big.bin (create, truncate),
 *   MiB MiB in 64 KiB write()s, fsync, close;
 * - fs_seq_read_mib_s: page cache dropped (sync, drop_caches = 3), open,
 *   64 KiB read()s to the end, close;
 * - fs_rand_read_iops: page cache dropped, READS 4 KiB pread()s at
 *   page-aligned offsets in the file, one at a time (fsbench's generator
 *   and seed);
 * - fs_small_files_s, fs_small_files_synced_s: in a new folder
 *   /mnt/fsbench/small-R, FILES times open (O_CREAT | O_EXCL), one 4 KiB
 *   write, close; then syncfs. Files per second until the last close, and
 *   until syncfs returned.
 */

#define FS_MOUNT "/mnt"
#define FS_DIR FS_MOUNT "/fsbench"
#define FS_BIG FS_DIR "/big.bin"
#define FS_CHUNK (64 * 1024)
#define FS_PAGE 4096
#define FS_SEED 0x00f5bec4ULL
#define FS_MAX_REPS 16

static void drop_caches(void)
{
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd < 0 || write(fd, "3\n", 2) != 2)
        fail("drop_caches");
    close(fd);
}

static double seconds_since(double t0)
{
    return (now_ns() - t0) / 1e9;
}

static void fs_mount(void)
{
    check_data_disk();
    if (mkdir(FS_MOUNT, 0755) && errno != EEXIST)
        fail("mkdir " FS_MOUNT);
    if (mount(blk_device, FS_MOUNT, "vfat", 0, "")) {
        char what[160];
        snprintf(what, sizeof what, "mount -t vfat %s " FS_MOUNT, blk_device);
        fail(what);
    }
    if (mkdir(FS_DIR, 0755) && errno != EEXIST)
        fail("mkdir " FS_DIR);
}

static void bench_fs(int argc, char **argv)
{
    long a[4];
    for (int i = 0; i < 4; i++) {
        char *end;
        a[i] = argc == 6 ? strtol(argv[2 + i], &end, 10) : 0;
        if (argc != 6 || *end || a[i] <= 0)
            fail_msg("usage: linuxbench fs MIB FILES READS REPS");
    }
    long mib = a[0], files = a[1], reads = a[2], reps = a[3] > FS_MAX_REPS ? FS_MAX_REPS : a[3];
    long chunks = mib * 1024 * 1024 / FS_CHUNK;
    double mib_done = (double)chunks * FS_CHUNK / (1024.0 * 1024.0);
    uint64_t pages = (uint64_t)chunks * (FS_CHUNK / FS_PAGE);
    static unsigned char data[FS_CHUNK];
    for (int i = 0; i < FS_CHUNK; i++)
        data[i] = (unsigned char)(i * 7 % 251);
    double wr[FS_MAX_REPS], rd[FS_MAX_REPS], rnd[FS_MAX_REPS], sm[FS_MAX_REPS], sms[FS_MAX_REPS];
    fs_mount();
    rng_state = FS_SEED;
    for (long r = 0; r < reps; r++) {
        drop_caches();
        double t0 = now_ns();
        int fd = open(FS_BIG, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            fail("open for writing " FS_BIG);
        for (long i = 0; i < chunks; i++)
            if (write(fd, data, FS_CHUNK) != FS_CHUNK)
                fail("write " FS_BIG);
        if (fsync(fd) || close(fd))
            fail("fsync " FS_BIG);
        wr[r] = mib_done / seconds_since(t0);

        drop_caches();
        t0 = now_ns();
        fd = open(FS_BIG, O_RDONLY);
        if (fd < 0)
            fail("open for reading " FS_BIG);
        for (long i = 0; i < chunks; i++)
            if (read(fd, data, FS_CHUNK) != FS_CHUNK)
                fail("read " FS_BIG);
        close(fd);
        rd[r] = mib_done / seconds_since(t0);

        drop_caches();
        t0 = now_ns();
        fd = open(FS_BIG, O_RDONLY);
        if (fd < 0)
            fail("open for reading " FS_BIG);
        for (long i = 0; i < reads; i++) {
            off_t off = (off_t)(rng_next() % pages) * FS_PAGE;
            if (pread(fd, data, FS_PAGE, off) != FS_PAGE)
                fail("pread " FS_BIG);
        }
        close(fd);
        rnd[r] = reads / seconds_since(t0);

        char dir[64], path[96];
        snprintf(dir, sizeof dir, FS_DIR "/small-%ld", r);
        if (mkdir(dir, 0755))
            fail("mkdir small");
        memset(data, 0xa5, FS_PAGE);
        t0 = now_ns();
        for (long i = 0; i < files; i++) {
            snprintf(path, sizeof path, "%s/f%04ld", dir, i);
            fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
            if (fd < 0 || write(fd, data, FS_PAGE) != FS_PAGE || close(fd))
                fail("small file");
        }
        double closed = seconds_since(t0);
        fd = open(dir, O_RDONLY | O_DIRECTORY);
        if (fd < 0 || syncfs(fd))
            fail("syncfs");
        close(fd);
        double synced = seconds_since(t0);
        sm[r] = files / closed;
        sms[r] = files / synced;
        for (int i = 0; i < FS_CHUNK; i++)
            data[i] = (unsigned char)(i * 7 % 251);
        printf("linuxbench: rep %ld: write %.2f MiB/s, read %.2f MiB/s, random reads %.0f/s, files %.0f/s (%.0f/s "
               "with sync)\n",
               r, wr[r], rd[r], rnd[r], sm[r], sms[r]);
    }
    report("fs_seq_write_mib_s", median(wr, reps));
    report("fs_seq_read_mib_s", median(rd, reps));
    report("fs_rand_read_iops", median(rnd, reps));
    report("fs_small_files_s", median(sm, reps));
    report("fs_small_files_synced_s", median(sms, reps));
    if (umount(FS_MOUNT))
        fail("umount " FS_MOUNT);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "devices")) {
        bench_devices(argc, argv);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "fs")) {
        bench_fs(argc, argv);
        return 0;
    }
    if (argc != 2) {
        printf("BENCH-ERROR usage: linuxbench /path/to/true\n");
        return 1;
    }
    report("clock_read_ns", bench_clock_read());
    report("null_syscall_ns", bench_null_syscall());
    report("pipe_rtt_ns", bench_pipe_round_trip());
    report("spawn_ns", bench_start_program(argv[1], spawn_once));
    report("fork_exec_ns", bench_start_program(argv[1], fork_exec_once));
    return 0;
}
