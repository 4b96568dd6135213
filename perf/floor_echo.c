/* The C floor: a raw-bytes echo between two processes over one OS primitive, both sides in C.
 *
 * Compiled at run time by perf/bench_transport.py (skipped when no cc/gcc is present):
 *
 *     floor_echo unix|fifo|stdio SIZE DIR
 *
 * forks an echo server (a child process) connected to this process over a Unix stream socket
 * bound in DIR, a pair of FIFOs made in DIR, or the child's stdin/stdout pipes, then reads loop
 * counts on its stdin, one per line. For each it writes SIZE bytes and reads SIZE bytes back,
 * LOOPS times, and prints the elapsed nanoseconds (CLOCK_MONOTONIC) on one line. Both sides block
 * in read(2)/write(2), exactly as the Python floor does: the difference between the two floors is
 * the interpreter, the difference to the reference is the protocol stack.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void write_all(int fd, const char *buf, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            die("write");
        }
        buf += w;
        n -= (size_t)w;
    }
}

/* 1 when n bytes were read, 0 on a clean end before any byte */
static int read_all(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("read");
        }
        if (r == 0) {
            if (got == 0) return 0;
            fprintf(stderr, "floor_echo: end of stream inside a message\n");
            exit(2);
        }
        got += (size_t)r;
    }
    return 1;
}

static void echo(int rfd, int wfd) {
    static char buf[1 << 16];
    for (;;) {
        ssize_t r = read(rfd, buf, sizeof buf);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("echo read");
        }
        if (r == 0) _exit(0);
        write_all(wfd, buf, (size_t)r);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: floor_echo unix|fifo|stdio SIZE DIR\n");
        return 2;
    }
    const char *mode = argv[1];
    size_t size = (size_t)strtoul(argv[2], NULL, 10);
    const char *dir = argv[3];
    if (size == 0) {
        fprintf(stderr, "floor_echo: SIZE must be > 0\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int rfd = -1, wfd = -1;
    pid_t child;
    if (strcmp(mode, "unix") == 0) {
        struct sockaddr_un addr;
        memset(&addr, 0, sizeof addr);
        addr.sun_family = AF_UNIX;
        if (snprintf(addr.sun_path, sizeof addr.sun_path, "%s/floor.sock", dir) >= (int)sizeof addr.sun_path) {
            fprintf(stderr, "floor_echo: socket path too long\n");
            return 2;
        }
        int ls = socket(AF_UNIX, SOCK_STREAM, 0);
        if (ls < 0) die("socket");
        unlink(addr.sun_path);
        if (bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
        if (listen(ls, 1) < 0) die("listen");
        child = fork();
        if (child < 0) die("fork");
        if (child == 0) {
            int c = accept(ls, NULL, NULL);
            if (c < 0) die("accept");
            close(ls);
            echo(c, c);
        }
        close(ls);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (s < 0) die("socket");
        if (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
        unlink(addr.sun_path);
        rfd = wfd = s;
    } else if (strcmp(mode, "fifo") == 0) {
        char c2s[4096], s2c[4096];
        snprintf(c2s, sizeof c2s, "%s/floor.c2s", dir);
        snprintf(s2c, sizeof s2c, "%s/floor.s2c", dir);
        unlink(c2s);
        unlink(s2c);
        if (mkfifo(c2s, 0600) < 0 || mkfifo(s2c, 0600) < 0) die("mkfifo");
        child = fork();
        if (child < 0) die("fork");
        if (child == 0) {
            int r = open(c2s, O_RDONLY);
            int w = open(s2c, O_WRONLY);
            if (r < 0 || w < 0) die("open fifo (server)");
            echo(r, w);
        }
        wfd = open(c2s, O_WRONLY);
        rfd = open(s2c, O_RDONLY);
        if (rfd < 0 || wfd < 0) die("open fifo (client)");
        unlink(c2s);
        unlink(s2c);
    } else if (strcmp(mode, "stdio") == 0) {
        int to_child[2], from_child[2];
        if (pipe(to_child) < 0 || pipe(from_child) < 0) die("pipe");
        child = fork();
        if (child < 0) die("fork");
        if (child == 0) {
            if (dup2(to_child[0], 0) < 0 || dup2(from_child[1], 1) < 0) die("dup2");
            close(to_child[0]);
            close(to_child[1]);
            close(from_child[0]);
            close(from_child[1]);
            echo(0, 1);
        }
        close(to_child[0]);
        close(from_child[1]);
        wfd = to_child[1];
        rfd = from_child[0];
    } else {
        fprintf(stderr, "floor_echo: unknown mode %s\n", mode);
        return 2;
    }
    char *out = malloc(size), *in = malloc(size);
    if (!out || !in) die("malloc");
    memset(out, 'x', size);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        long loops = strtol(line, NULL, 10);
        if (loops <= 0) break;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (long i = 0; i < loops; i++) {
            write_all(wfd, out, size);
            if (!read_all(rfd, in, size)) {
                fprintf(stderr, "floor_echo: the echo ended\n");
                return 2;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long long ns = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
        printf("%lld\n", ns);
        fflush(stdout);
    }
    close(wfd);
    if (rfd != wfd) close(rfd);
    int status;
    waitpid(child, &status, 0);
    return 0;
}
