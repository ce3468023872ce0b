/*
 * eksnet's native CNI forwarder: the executable a container runtime runs for eksnet-ipvlan,
 * eksnet-macvlan and eksnet-ipam (one program; the name it was run as, argv[0], says which).
 *
 * It does what node_runtime/cni/forward.py does, without an interpreter's start (~10 ms): send the
 * CNI_* environment and stdin to eksnet-ipamd over its unix socket, print the answer, exit with its
 * code. The wire format, size limit, socket and error codes are node_runtime/cni/protocol.py's,
 * brought in by the header it generates (protocol.h, written by `make native`).
 *
 * When the daemon cannot be reached (no socket, refused, closed without an answer, timed out) it
 * execs the Python fallback (node_runtime.cni.inprocess) with the same environment and stdin, so
 * DEL still tears down and STATUS still answers. A request over the size limit is refused with
 * EKSNET_CODE_REQUEST_TOO_LARGE, except a DEL, which goes to the fallback.
 *
 * Settings: each installed copy carries its own, written by node_runtime.install into the block
 * eksnet_settings[] after its marker: "socket=<path>\0fallback=<path>\0" (like the socket path
 * the Python shims carry in their text). EKSNET_IPAMD_SOCKET in the environment overrides the
 * socket. An unpatched build uses the default socket and has no fallback.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "protocol.h"

extern char **environ;

/* Not const, not static: the installer rewrites it in the file, so it must be read at run time. */
__attribute__((used)) char eksnet_settings[EKSNET_SETTINGS_SIZE] = EKSNET_SETTINGS_MARKER;

struct buf {
    char *data;
    size_t len, cap;
};

static int reserve(struct buf *b, size_t more) {
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

static int put(struct buf *b, const void *p, size_t n) {
    if (reserve(b, n))
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static int put_field(struct buf *b, const struct buf *field) {
    uint32_t n = (uint32_t)field->len;
    unsigned char be[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
                           (unsigned char)n};
    return put(b, be, 4) || put(b, field->data, field->len);
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The value of `key` in the settings block, or NULL. */
static const char *setting(const char *key) {
    const char *p = eksnet_settings + sizeof(EKSNET_SETTINGS_MARKER);
    const char *end = eksnet_settings + EKSNET_SETTINGS_SIZE;
    size_t klen = strlen(key);
    while (p < end && *p) {
        size_t n = strnlen(p, (size_t)(end - p));
        if (n > klen && memcmp(p, key, klen) == 0 && p[klen] == '=')
            return p + klen + 1;
        p += n + 1;
    }
    return NULL;
}

/* The config's cniVersion when it names a supported one, else the latest: what errors carry
 * (a plain scan for the first "cniVersion" key, as this program parses no JSON). */
static const char *error_version(const struct buf *body) {
    static const char *const supported[] = EKSNET_SUPPORTED_VERSIONS;
    static const char key[] = "\"cniVersion\"";
    if (!body->len)
        return EKSNET_LATEST;
    const char *p = memmem(body->data, body->len, key, sizeof(key) - 1);
    const char *end = body->data + body->len;
    if (!p)
        return EKSNET_LATEST;
    p += sizeof(key) - 1;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    if (p >= end || *p++ != ':')
        return EKSNET_LATEST;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    if (p >= end || *p++ != '"')
        return EKSNET_LATEST;
    const char *q = memchr(p, '"', (size_t)(end - p));
    if (!q)
        return EKSNET_LATEST;
    for (const char *const *v = supported; *v; v++)
        if (strlen(*v) == (size_t)(q - p) && memcmp(*v, p, (size_t)(q - p)) == 0)
            return *v;
    return EKSNET_LATEST;
}

/* A CNI error on stdout, byte for byte as protocol.error_json prints it. */
static int print_error(int code, const char *msg, const char *details, const char *version) {
    char out[1024];
    int n;
    if (details && *details)
        n = snprintf(out, sizeof(out), "{\"cniVersion\": \"%s\", \"code\": %d, \"msg\": \"%s\", \"details\": \"%s\"}\n",
                     version, code, msg, details);
    else
        n = snprintf(out, sizeof(out), "{\"cniVersion\": \"%s\", \"code\": %d, \"msg\": \"%s\"}\n", version, code, msg);
    if (n > 0)
        write_all(1, out, (size_t)n < sizeof(out) ? (size_t)n : sizeof(out) - 1);
    return 1;
}

/* One request to the daemon; 0 with the answer in `ans`, -1 when it cannot answer. */
static int ask(const char *path, const struct buf *req, struct buf *ans) {
    struct sockaddr_un sa;
    size_t n = strlen(path);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (n == 0 || n > sizeof(sa.sun_path))
        return -1;
    memcpy(sa.sun_path, path, n);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* Blocking with timeouts: a full listen backlog waits (up to the timeout) instead of failing. */
    struct timeval tv = {.tv_sec = EKSNET_TIMEOUT_SECONDS, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
        goto fail;
    const char *p = req->data;
    size_t left = req->len;
    int refused = 0;
    while (left) {
        ssize_t w = send(fd, p, left, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EPIPE || errno == ECONNRESET) { /* its answer, if any, says why */
                refused = 1;
                break;
            }
            goto fail;
        }
        p += w;
        left -= (size_t)w;
    }
    if (!refused)
        shutdown(fd, SHUT_WR);
    for (;;) {
        if (reserve(ans, 65536))
            goto fail;
        ssize_t r = recv(fd, ans->data + ans->len, 65536, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECONNRESET && ans->len) /* answered, then closed with our request unread */
                break;
            goto fail;
        }
        if (r == 0)
            break;
        ans->len += (size_t)r;
    }
    close(fd);
    return ans->len ? 0 : -1;
fail:
    close(fd);
    return -1;
}

/* The daemon could not answer: exec the Python fallback with stdin as it came (from a memfd). */
static int fallback(const char *name, const struct buf *body, const char *command, const char *socket_path) {
    const char *exe = setting("fallback");
    if (exe && *exe) {
        int fd = memfd_create("eksnet-cni-stdin", 0);
        if (fd >= 0 && write_all(fd, body->data, body->len) == 0 && lseek(fd, 0, SEEK_SET) == 0 &&
            dup2(fd, 0) == 0) {
            if (fd != 0)
                close(fd);
            char *const args[] = {(char *)exe, (char *)name, NULL};
            execve(exe, args, environ);
        }
        fprintf(stderr, "%s: cannot run the fallback %s: %s\n", name, exe, strerror(errno));
    } else {
        fprintf(stderr, "%s: eksnet-ipamd is not reachable at %s and no fallback is installed\n", name, socket_path);
    }
    if (strcmp(command, "DEL") == 0)
        return 0; /* DEL must succeed; reconciliation releases the lease once the namespace is gone */
    if (strcmp(command, "STATUS") == 0)
        return print_error(EKSNET_CODE_NOT_AVAILABLE, "eksnet-ipamd is not reachable", "", error_version(body));
    return print_error(EKSNET_CODE_TRY_AGAIN_LATER, "eksnet-ipamd is not reachable", "start eksnet-ipamd.service",
                       error_version(body));
}

int main(int argc, char **argv) {
    const char *name = argc > 0 && argv[0] ? argv[0] : "";
    const char *slash = strrchr(name, '/');
    if (slash)
        name = slash + 1;
    const char *command = getenv("CNI_COMMAND");
    if (!command)
        command = "";

    struct buf kind = {0}, env = {0}, body = {0}, req = {0}, ans = {0};
    if (put(&kind, EKSNET_KIND_CNI, sizeof(EKSNET_KIND_CNI) - 1) || put(&kind, name, strlen(name)))
        return print_error(EKSNET_CODE_INTERNAL, "out of memory", "", EKSNET_LATEST);
    size_t plen = sizeof(EKSNET_ENV_PREFIX) - 1;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, EKSNET_ENV_PREFIX, plen) != 0 || !strchr(*e, '='))
            continue;
        if ((env.len && put(&env, "", 1)) || put(&env, *e, strlen(*e)))
            return print_error(EKSNET_CODE_INTERNAL, "out of memory", "", EKSNET_LATEST);
    }
    for (;;) {
        if (reserve(&body, 65536))
            return print_error(EKSNET_CODE_INTERNAL, "out of memory", "", EKSNET_LATEST);
        ssize_t r = read(0, body.data + body.len, body.cap - body.len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            body.len = 0; /* as the Python forwarder: unreadable stdin is empty */
            break;
        }
        if (r == 0)
            break;
        body.len += (size_t)r;
    }

    const char *socket_path = getenv(EKSNET_SOCKET_ENV);
    if (!socket_path)
        socket_path = setting("socket");
    if (!socket_path)
        socket_path = EKSNET_DEFAULT_SOCKET;

    size_t size = EKSNET_MAGIC_LEN + 12 + kind.len + env.len + body.len;
    if (size > EKSNET_MAX_REQUEST) {
        if (strcmp(command, "DEL") == 0)
            return fallback(name, &body, command, socket_path);
        char details[96];
        snprintf(details, sizeof(details), "%zu bytes, the limit is %u", size, EKSNET_MAX_REQUEST);
        return print_error(EKSNET_CODE_REQUEST_TOO_LARGE, "request too large", details, error_version(&body));
    }
    if (put(&req, EKSNET_MAGIC, EKSNET_MAGIC_LEN) || put_field(&req, &kind) || put_field(&req, &env) ||
        put_field(&req, &body))
        return print_error(EKSNET_CODE_INTERNAL, "out of memory", "", EKSNET_LATEST);
    if (ask(socket_path, &req, &ans) == 0) {
        write_all(1, ans.data + 1, ans.len - 1);
        return (unsigned char)ans.data[0];
    }
    return fallback(name, &body, command, socket_path);
}
