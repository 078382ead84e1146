#include "output/jsonout.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define OUT_BUF (1u << 20)

struct out {
    int fd;
    int failed; /* errno of the first failed write, 0 while all went */
    size_t n;
    char buf[OUT_BUF];
};

static void flush(struct out *o)
{
    size_t off = 0;
    while (off < o->n && !o->failed) {
        ssize_t w = write(o->fd, o->buf + off, o->n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            o->failed = w < 0 ? errno : ENOSPC;
        else
            off += (size_t)w;
    }
    o->n = 0;
}

static void put(struct out *o, const char *s, size_t len)
{
    while (len) {
        if (o->n == OUT_BUF)
            flush(o);
        size_t k = OUT_BUF - o->n < len ? OUT_BUF - o->n : len;
        memcpy(o->buf + o->n, s, k);
        o->n += k;
        s += k;
        len -= k;
    }
}

static void puts_(struct out *o, const char *s) { put(o, s, strlen(s)); }

static void indent(struct out *o, int level)
{
    static const char spaces[] = "                                                                ";
    for (size_t n = (size_t)level * 2; n;) {
        size_t k = n < sizeof spaces - 1 ? n : sizeof spaces - 1;
        put(o, spaces, k);
        n -= k;
    }
}

/* json-c's escaping, '/' left as it is (NOSLASHESCAPE). */
static void string(struct out *o, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    put(o, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[6];
        switch (c) {
        case '\b': esc = "\\b"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\f': esc = "\\f"; break;
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        default:
            if (c >= ' ')
                continue;
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 0xf];
        }
        put(o, s + start, i - start);
        if (esc)
            put(o, esc, 2);
        else
            put(o, u, 6);
        start = i + 1;
    }
    put(o, s + start, len - start);
    put(o, "\"", 1);
}

/* json-c's default for a double: "%.17g", and ".0" when that looks like an integer. */
static void number(struct out *o, double d)
{
    char b[128];
    if (isnan(d)) {
        puts_(o, "NaN");
        return;
    }
    if (isinf(d)) {
        puts_(o, d > 0 ? "Infinity" : "-Infinity");
        return;
    }
    int n = snprintf(b, sizeof b, "%.17g", d);
    if (n < 0)
        return;
    int numeric = (b[0] >= '0' && b[0] <= '9') || (n > 1 && b[0] == '-' && b[1] >= '0' && b[1] <= '9');
    if (numeric && !strchr(b, '.') && !strchr(b, ',') && !strchr(b, 'e') && n < (int)sizeof b - 2)
        strcat(b, ".0");
    puts_(o, b);
}

static void value(struct out *o, json_object *v, int level)
{
    char b[32];
    switch (json_object_get_type(v)) {
    case json_type_null:
        puts_(o, "null");
        break;
    case json_type_boolean:
        puts_(o, json_object_get_boolean(v) ? "true" : "false");
        break;
    case json_type_int:
        snprintf(b, sizeof b, "%" PRId64, json_object_get_int64(v));
        puts_(o, b);
        break;
    case json_type_double:
        number(o, json_object_get_double(v));
        break;
    case json_type_string:
        string(o, json_object_get_string(v), (size_t)json_object_get_string_len(v));
        break;
    case json_type_object: {
        int any = 0;
        puts_(o, "{\n");
        json_object_object_foreach(v, key, val)
        {
            if (any)
                puts_(o, ",\n");
            any = 1;
            indent(o, level + 1);
            string(o, key, strlen(key));
            put(o, ":", 1);
            value(o, val, level + 1);
        }
        if (any)
            put(o, "\n", 1);
        indent(o, level);
        put(o, "}", 1);
        break;
    }
    case json_type_array: {
        size_t n = json_object_array_length(v);
        puts_(o, "[\n");
        for (size_t i = 0; i < n; i++) {
            if (i)
                puts_(o, ",\n");
            indent(o, level + 1);
            value(o, json_object_array_get_idx(v, i), level + 1);
        }
        if (n)
            put(o, "\n", 1);
        indent(o, level);
        put(o, "]", 1);
        break;
    }
    }
}

int jsonout_write_fd(int fd, json_object *doc)
{
    static struct out o; /* 1 MiB: not on the stack; output is single-threaded */
    o.fd = fd;
    o.failed = 0;
    o.n = 0;
    value(&o, doc, 0);
    put(&o, "\n", 1);
    flush(&o);
    if (o.failed) {
        errno = o.failed;
        return -1;
    }
    return 0;
}
