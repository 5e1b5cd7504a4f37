// Load generator for the socket lab's benchmark (bench/bench.ts compiles and drives it).
//
// One thread, epoll, non-blocking sockets: it costs far less CPU per request than the Deno
// servers it measures, so on a 2-core machine the server, not this program, is the limit. Its
// own CPU time is reported with every result so that can be checked.
//
//   loadgen echo-oneshot   PORT CONNS SECONDS   connect, send a line, read the reply, close
//   loadgen echo-keepalive PORT CONNS SECONDS   request/response on CONNS open connections
//   loadgen chat PORT[,PORT...] CONNS SECONDS SENDERS RATE [realtime]
//                                               SENDERS of CONNS send RATE lines/s each;
//                                               "realtime": stamp lines with CLOCK_REALTIME
//                                               (for members in other programs to read);
//                                               with several ports (one room on several
//                                               servers), member i connects to port
//                                               i mod (number of ports)
//   loadgen idle PORT CONNS SECONDS [greet]     hold CONNS open; "greet": count those greeted
//
// Prints one JSON object on stdout. 127.0.0.1 only.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { ONESHOT, KEEPALIVE, CHAT, IDLE };
enum state { CONNECTING, WRITING, READING, DONE };

typedef struct {
  int fd;
  enum state st;
  int64_t t0;          // when the current request started
  char buf[8192];      // unfinished line
  int len;
  int greeted;         // received at least one line
  uint64_t *seen;      // chat: bitmap per sender of sequence numbers received
  int64_t *last;       // chat: highest sequence received per sender
} conn_t;

static enum mode mode;
static int nconns, seconds, senders, rate;
#define MAX_PORTS 64
static int ports[MAX_PORTS], nports;  // chat may spread its members over several ports
static conn_t *conns;
static int ep;
static int64_t *lat;
static size_t nlat, caplat;
static uint64_t requests, errors, dup_count, reordered, received;
static int64_t *sent;  // chat: lines sent per sender
static int64_t maxseq;
static int realtime;  // chat: lines stamped with CLOCK_REALTIME instead of CLOCK_MONOTONIC
static int connecting;  // connects under way (a burst past the listen backlog waits for SYN retries)
#define MAX_CONNECTING 256

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// The clock of a chat line's stamp.
static int64_t stamp_ns(void) {
  struct timespec ts;
  clock_gettime(realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void record(int64_t ns) {
  if (nlat == caplat) {
    caplat = caplat ? caplat * 2 : 1 << 20;
    lat = realloc(lat, caplat * sizeof *lat);
    if (!lat) { perror("realloc"); exit(1); }
  }
  lat[nlat++] = ns;
}

static int cmp64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static void watch(conn_t *c, uint32_t events, int op) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(ep, op, c->fd, &ev) < 0) { perror("epoll_ctl"); exit(1); }
}

static void start(conn_t *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c->fd < 0) { perror("socket"); exit(1); }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(ports[(c - conns) % nports])};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  c->t0 = now_ns();
  c->len = 0;
  c->st = CONNECTING;
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
    errors++;
    close(c->fd);
    c->st = DONE;
    return;
  }
  connecting++;
  watch(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void send_ping(conn_t *c) {
  static const char ping[] = "ping\n";
  c->t0 = now_ns();
  if (write(c->fd, ping, sizeof ping - 1) != (ssize_t)(sizeof ping - 1)) { errors++; }
  c->st = READING;
}

static int64_t parse_int(char **p) {
  int64_t v = 0;
  while (**p == ' ') (*p)++;
  while (**p >= '0' && **p <= '9') v = v * 10 + (*(*p)++ - '0');
  return v;
}

// Chat: one received line. Lines of the bench look like "NAME: b SENDER SEQ T_NS".
static void chat_line(conn_t *c, char *line, int len) {
  c->greeted = 1;
  char *p = memchr(line, ':', len);
  if (!p || p[1] != ' ' || p[2] != 'b' || p[3] != ' ') return;
  p += 4;
  int s = (int)parse_int(&p);
  int64_t seq = parse_int(&p), t = parse_int(&p);
  if (s < 0 || s >= senders || seq >= maxseq) return;
  received++;
  record(stamp_ns() - t);
  uint64_t *bits = c->seen + (size_t)s * (maxseq / 64 + 1);
  if (bits[seq / 64] & (1ULL << (seq % 64))) dup_count++;
  bits[seq / 64] |= 1ULL << (seq % 64);
  if (seq < c->last[s]) reordered++;
  else c->last[s] = seq;
}

static void on_readable(conn_t *c, int64_t deadline) {
  for (;;) {
    ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
    if (n < 0) {
      if (errno == EAGAIN) return;
      errors++;
      n = 0;
    }
    if (n == 0) {  // closed by the server
      epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
      close(c->fd);
      c->st = DONE;
      if (mode == ONESHOT && now_ns() < deadline) start(c);
      else if (mode != ONESHOT) errors++;
      return;
    }
    c->len += n;
    c->buf[c->len] = 0;
    char *line = c->buf, *nl;
    while ((nl = memchr(line, '\n', c->len - (line - c->buf)))) {
      *nl = 0;
      if (mode == CHAT) {
        chat_line(c, line, (int)(nl - line));
      } else if (mode == IDLE) {
        c->greeted = 1;
      } else {
        requests++;
        record(now_ns() - c->t0);
        if (mode == KEEPALIVE) {
          if (now_ns() < deadline) send_ping(c);
          else c->st = DONE;
        } else {
          // One-shot: the reply is in; close and go again.
          epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
          close(c->fd);
          c->st = DONE;
          if (now_ns() < deadline) start(c);
          return;
        }
      }
      line = nl + 1;
    }
    int rest = c->len - (line - c->buf);
    if (rest == (int)sizeof c->buf - 1) rest = 0;  // an over-long line: drop it
    memmove(c->buf, line, rest);
    c->len = rest;
  }
}

static void on_writable(conn_t *c) {
  connecting--;
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) {
    errors++;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->st = DONE;
    return;
  }
  watch(c, EPOLLIN, EPOLL_CTL_MOD);
  if (mode == ONESHOT || mode == KEEPALIVE) send_ping(c);
  else c->st = READING;
}

static int run_loop(int64_t until, int64_t deadline, int chat_senders_from) {
  struct epoll_event evs[1024];
  int64_t send_start = chat_senders_from ? now_ns() : 0;
  for (;;) {
    int64_t t = now_ns();
    if (t >= until) return 0;
    if (chat_senders_from && t < deadline) {
      // Each sender sends the lines due by now: RATE per second, evenly.
      int64_t due = (t - send_start) * rate / 1000000000LL;
      for (int s = 0; s < senders; s++) {
        conn_t *c = &conns[s];
        while (sent[s] < due && sent[s] < maxseq && c->st == READING) {
          char line[96];
          int n = snprintf(line, sizeof line, "b %d %lld %lld\n", s, (long long)sent[s], (long long)stamp_ns());
          if (write(c->fd, line, n) != n) break;  // socket full: try again next turn
          sent[s]++;
        }
      }
    }
    int timeout = chat_senders_from ? 1 : (int)((until - t) / 1000000 + 1);
    int n = epoll_wait(ep, evs, 1024, timeout);
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      if (c->st == CONNECTING) on_writable(c);
      else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c, deadline);
    }
  }
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: loadgen echo-oneshot|echo-keepalive|chat|idle PORT CONNS SECONDS [SENDERS RATE]\n");
    return 2;
  }
  mode = !strcmp(argv[1], "echo-oneshot") ? ONESHOT : !strcmp(argv[1], "echo-keepalive") ? KEEPALIVE
       : !strcmp(argv[1], "chat") ? CHAT : IDLE;
  // PORT, or (chat only) PORT,PORT,...: members round-robin over them.
  for (char *p = argv[2];; p++) {
    if (nports == MAX_PORTS) { fprintf(stderr, "loadgen: at most %d ports\n", MAX_PORTS); return 2; }
    ports[nports++] = atoi(p);
    if (!(p = strchr(p, ','))) break;
  }
  if (nports > 1 && mode != CHAT) {
    fprintf(stderr, "loadgen: a list of ports is for chat mode only\n");
    return 2;
  }
  nconns = atoi(argv[3]);
  seconds = atoi(argv[4]);
  senders = argc > 5 ? atoi(argv[5]) : 0;
  rate = argc > 6 ? atoi(argv[6]) : 0;
  realtime = argc > 7 && !strcmp(argv[7], "realtime");
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  ep = epoll_create1(0);
  conns = calloc(nconns, sizeof *conns);
  if (mode == CHAT) {
    maxseq = (int64_t)rate * seconds + 64;
    sent = calloc(senders, sizeof *sent);
    for (int i = 0; i < nconns; i++) {
      conns[i].seen = calloc((size_t)senders * (maxseq / 64 + 1), sizeof(uint64_t));
      conns[i].last = calloc(senders, sizeof(int64_t));
      for (int s = 0; s < senders; s++) conns[i].last[s] = -1;
    }
  }
  double cpu0 = cpu_seconds();
  int64_t t0 = now_ns();
  int next = 0;
  if (mode == ONESHOT || mode == KEEPALIVE) {
    for (; next < nconns; next++) start(&conns[next]);
  }

  if (mode == ONESHOT || mode == KEEPALIVE) {
    int64_t deadline = t0 + (int64_t)seconds * 1000000000LL;
    run_loop(deadline + 2000000000LL, deadline, 0);
    int64_t elapsed = now_ns() - t0;
    (void)elapsed;
    qsort(lat, nlat, sizeof *lat, cmp64);
    printf("{\"requests\":%llu,\"seconds\":%d,\"rps\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"errors\":%llu,"
           "\"loadgen_cpu_s\":%.3f}\n",
           (unsigned long long)requests, seconds, requests / (double)seconds,
           nlat ? lat[nlat / 2] / 1e6 : 0, nlat ? lat[(size_t)(nlat * 0.99)] / 1e6 : 0,
           (unsigned long long)errors, cpu_seconds() - cpu0);
    return 0;
  }

  // Idle and chat: connect everyone, then wait until all are in (greeted, or a moment).
  int64_t settle = now_ns() + 30000000000LL;
  for (;;) {
    while (next < nconns && connecting < MAX_CONNECTING) start(&conns[next++]);
    run_loop(now_ns() + (next < nconns ? 2000000LL : 50000000LL), 0, 0);
    if (next < nconns) continue;
    int in = 0, done = 0;
    for (int i = 0; i < nconns; i++) {
      in += conns[i].st == READING && (conns[i].greeted || mode == IDLE || argc <= 5);
      done += conns[i].st == DONE;
    }
    int want_greeting = (mode == CHAT) || (mode == IDLE && argc > 5);
    int greeted = 0;
    for (int i = 0; i < nconns; i++) greeted += conns[i].greeted;
    if (want_greeting ? greeted + done >= nconns : in + done >= nconns) break;
    if (now_ns() > settle) break;
  }
  int held = 0, greeted = 0;
  for (int i = 0; i < nconns; i++) {
    held += conns[i].st == READING;
    greeted += conns[i].greeted;
  }
  if (mode == IDLE) {
    printf("{\"held\":%d,\"greeted\":%d,\"errors\":%llu}\n", held, greeted, (unsigned long long)errors);
    fflush(stdout);
    // Hold the connections until told to stop (stdin closes) or SECONDS pass.
    char b;
    fcntl(0, F_SETFL, 0);
    alarm(seconds);
    (void)!read(0, &b, 1);
    return 0;
  }

  // Chat: send for SECONDS, then let deliveries drain.
  nlat = 0;
  received = 0;
  int64_t start_ns = now_ns();
  int64_t deadline = start_ns + (int64_t)seconds * 1000000000LL;
  run_loop(deadline + 3000000000LL, deadline, 1);
  int64_t total_sent = 0;
  for (int s = 0; s < senders; s++) total_sent += sent[s];
  // Each line goes to every client but its sender.
  int64_t expected = total_sent * (nconns - 1);
  uint64_t unique = received - dup_count;
  qsort(lat, nlat, sizeof *lat, cmp64);
  printf("{\"clients\":%d,\"held\":%d,\"senders\":%d,\"rate\":%d,\"sent\":%lld,\"expected\":%lld,"
         "\"delivered\":%llu,\"deliveries_per_s\":%.0f,\"offered_per_s\":%.0f,\"lost\":%lld,"
         "\"duplicated\":%llu,\"reordered\":%llu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"errors\":%llu,"
         "\"loadgen_cpu_s\":%.3f}\n",
         nconns, held, senders, rate, (long long)total_sent, (long long)expected, (unsigned long long)received,
         received / (double)seconds, (double)senders * rate * (nconns - 1), (long long)(expected - (int64_t)unique),
         (unsigned long long)dup_count, (unsigned long long)reordered, nlat ? lat[nlat / 2] / 1e6 : 0,
         nlat ? lat[(size_t)(nlat * 0.99)] / 1e6 : 0, (unsigned long long)errors, cpu_seconds() - cpu0);
  return 0;
}
