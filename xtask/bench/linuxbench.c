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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(int argc, char **argv)
{
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
