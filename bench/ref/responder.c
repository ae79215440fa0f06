/*
 * The reference the serving-core targets are stated against: a minimal single-threaded epoll
 * HTTP/1.1 responder that answers from RAM. At start it reads every regular file of a folder
 * into memory as a complete response (status line, Content-Length, body); a GET for
 * "/<name>" sends it with send(2) from that buffer, anything else gets a 404. Keep-alive,
 * pipelined requests answered in order, EPOLLOUT when the socket is full. No logging, no
 * Date, no conditional requests: a floor for what serving from memory costs, not a server.
 *
 * With "sendfile" as a third argument the bodies are not read into memory: the head is sent
 * from memory and the body with sendfile(2) from the open file (the second floor: what
 * serving from the page cache costs).
 *
 * usage: responder PORT FOLDER [sendfile]
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct file { char name[256]; char *resp; size_t len; int fd; size_t head_len; size_t body_len; };
static int use_sendfile;
static struct file files[64];
static int nfiles;
static const char not_found[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

struct conn {
    int fd;
    size_t have;          /* request bytes buffered */
    const char *out;      /* response being sent, or NULL */
    size_t out_len, out_off;
    int file_fd;          /* body still to go by sendfile (file_left bytes from file_off) */
    off_t file_off;
    size_t file_left;
    int want_out;         /* registered for EPOLLOUT */
    char buf[8192];
};

static int ep;

static void load(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) { perror("opendir"); exit(1); }
    struct dirent *e;
    while ((e = readdir(d)) && nfiles < 64) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) || !S_ISREG(st.st_mode)) continue;
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        struct file *fl = &files[nfiles++];
        snprintf(fl->name, sizeof fl->name, "%s", e->d_name);
        char head[128];
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %lld\r\n\r\n",
                          (long long)st.st_size);
        fl->head_len = hl;
        fl->body_len = st.st_size;
        if (use_sendfile) {
            fl->len = hl;
            fl->resp = malloc(hl);
            memcpy(fl->resp, head, hl);
            fl->fd = dup(fileno(f));
        } else {
            fl->len = hl + st.st_size;
            fl->resp = malloc(fl->len);
            memcpy(fl->resp, head, hl);
            if (fread(fl->resp + hl, 1, st.st_size, f) != (size_t)st.st_size) { perror("fread"); exit(1); }
            fl->fd = -1;
        }
        fclose(f);
    }
    closedir(d);
}

static void lookup(const char *req, size_t len, const char **out, size_t *out_len, struct file **file) {
    *out = not_found;
    *out_len = sizeof not_found - 1;
    *file = NULL;
    if (len < 6 || memcmp(req, "GET /", 5) != 0) return;
    const char *name = req + 5;
    const char *sp = memchr(name, ' ', len - 5);
    if (!sp) return;
    for (int i = 0; i < nfiles; i++) {
        if ((size_t)(sp - name) == strlen(files[i].name) && memcmp(name, files[i].name, sp - name) == 0) {
            *out = files[i].resp;
            *out_len = files[i].len;
            *file = &files[i];
            return;
        }
    }
}

static void set_events(struct conn *c, int out) {
    if (c->want_out == out) return;
    struct epoll_event ev = {.events = out ? EPOLLOUT : EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = out;
}

static void drop(struct conn *c) { close(c->fd); free(c); }

/* Answers buffered requests until the socket is full or none is complete. 0: closed. */
static int serve(struct conn *c) {
    for (;;) {
        while (c->out) {
            ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                             MSG_NOSIGNAL | (c->file_left ? MSG_MORE : 0));
            if (w < 0) {
                if (errno == EAGAIN) { set_events(c, 1); return 1; }
                return 0;
            }
            c->out_off += w;
            if (c->out_off == c->out_len) c->out = NULL;
        }
        while (c->file_left) {
            ssize_t w = sendfile(c->fd, c->file_fd, &c->file_off, c->file_left);
            if (w < 0) {
                if (errno == EAGAIN) { set_events(c, 1); return 1; }
                return 0;
            }
            if (w == 0) return 0;
            c->file_left -= w;
        }
        char *end = memmem(c->buf, c->have, "\r\n\r\n", 4);
        if (!end) { set_events(c, 0); return 1; }
        size_t n = end + 4 - c->buf;
        struct file *f;
        lookup(c->buf, n, &c->out, &c->out_len, &f);
        c->out_off = 0;
        if (f && f->fd >= 0) {
            c->file_fd = f->fd;
            c->file_off = 0;
            c->file_left = f->body_len;
        }
        memmove(c->buf, c->buf + n, c->have - n);
        c->have -= n;
    }
}

int main(int argc, char **argv) {
    if (argc != 3 && !(argc == 4 && strcmp(argv[3], "sendfile") == 0)) {
        fprintf(stderr, "usage: %s PORT FOLDER [sendfile]\n", argv[0]);
        return 2;
    }
    use_sendfile = argc == 4;
    load(argv[2]);
    int one = 1;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1])),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 4096)) { perror("listen"); return 1; }
    ep = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
    struct epoll_event evs[512];
    for (;;) {
        int k = epoll_wait(ep, evs, 512, -1);
        for (int i = 0; i < k; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c = calloc(1, sizeof *c);
                    c->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (!c->out && !c->file_left) {
                ssize_t r = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
                if (r == 0 || (r < 0 && errno != EAGAIN) || (r < 0 && c->have == sizeof c->buf)) { drop(c); continue; }
                if (r > 0) c->have += r;
            }
            if (!serve(c)) drop(c);
        }
    }
}
