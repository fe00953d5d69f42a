/*
 * json_check.h - a strict JSON (RFC 8259) syntax checker for the registry
 * and actuator tests, so they assert "this is valid JSON" rather than only
 * grepping for substrings.  Strings must be valid UTF-8 without raw control
 * bytes.  Header-only (static functions) for the two test programs.
 */
#ifndef HC_JSON_CHECK_H
#define HC_JSON_CHECK_H

#include <stdbool.h>
#include <string.h>

static bool jc_value(const char **p, int depth);

static void jc_ws(const char **p)
{
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
        (*p)++;
}

static bool jc_string(const char **p)
{
    const unsigned char *s = (const unsigned char *)*p;
    if (*s++ != '"')
        return false;
    for (;;) {
        unsigned char c = *s;
        if (c == '"')
            break;
        if (c < 0x20)
            return false; /* raw control byte or end of input */
        if (c == '\\') {
            s++;
            if (*s == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (strchr("0123456789abcdefABCDEF", s[i]) == NULL || s[i] == '\0')
                        return false;
                s += 5;
            } else if (*s != '\0' && strchr("\"\\/bfnrt", *s) != NULL) {
                s++;
            } else {
                return false;
            }
            continue;
        }
        if (c < 0x80) {
            s++;
            continue;
        }
        int n = c >= 0xF0 && c <= 0xF4 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 && c < 0xE0 ? 1 : -1;
        if (n < 0)
            return false;
        for (int i = 1; i <= n; i++)
            if ((s[i] & 0xC0) != 0x80)
                return false;
        s += n + 1;
    }
    *p = (const char *)s + 1;
    return true;
}

static bool jc_number(const char **p)
{
    const char *s = *p;
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9')
            s++;
    else
        return false;
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    *p = s;
    return true;
}

static bool jc_seq(const char **p, char close, bool object, int depth)
{
    (*p)++;
    jc_ws(p);
    if (**p == close) {
        (*p)++;
        return true;
    }
    for (;;) {
        jc_ws(p);
        if (object) {
            if (!jc_string(p))
                return false;
            jc_ws(p);
            if (*(*p)++ != ':')
                return false;
        }
        if (!jc_value(p, depth + 1))
            return false;
        jc_ws(p);
        char c = *(*p)++;
        if (c == close)
            return true;
        if (c != ',')
            return false;
    }
}

static bool jc_value(const char **p, int depth)
{
    if (depth > 64)
        return false;
    jc_ws(p);
    switch (**p) {
    case '{': return jc_seq(p, '}', true, depth);
    case '[': return jc_seq(p, ']', false, depth);
    case '"': return jc_string(p);
    case 't': return strncmp(*p, "true", 4) == 0 && (*p += 4, true);
    case 'f': return strncmp(*p, "false", 5) == 0 && (*p += 5, true);
    case 'n': return strncmp(*p, "null", 4) == 0 && (*p += 4, true);
    default: return jc_number(p);
    }
}

/* true when s is exactly one JSON value (surrounded by optional whitespace). */
static inline bool json_valid(const char *s)
{
    if (s == NULL || !jc_value(&s, 0))
        return false;
    jc_ws(&s);
    return *s == '\0';
}

#endif
