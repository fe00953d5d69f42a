/*
 * scenario.c - JSON recipes of requests with assertions (sandbox/scenarios/),
 * run through the same routing table as HTTP (sb_dispatch).  Format:
 *
 *   {"name": "...", "profiles": ["memory", "postgres"],      (optional)
 *    "steps": [{"name": "...", "method": "POST", "path": "/cache/put",
 *               "body": {...}, "profiles": [...],            (optional)
 *               "expect": {"status": 200,
 *                          "json": {"dotted.path": value | {"$op": arg}}}}]}
 *
 * Paths index arrays by number ("steps.4.value"); operators: $ne, $gt, $gte,
 * $lt, $lte (numbers), $exists (bool), $contains (substring), $len (array or
 * string length).  A plain value must be equal (json_equal; 1 == 1.0).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox.h"

static json_t *lookup(json_t *j, const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = j;
    for (char *save = NULL, *seg = strtok_r(buf, ".", &save); seg && cur;
         seg = strtok_r(NULL, ".", &save)) {
        if (json_is_array(cur)) {
            char *end;
            long i = strtol(seg, &end, 10);
            cur = *end == '\0' && i >= 0 ? json_array_get(cur, (size_t)i) : NULL;
        } else {
            cur = json_object_get(cur, seg);
        }
    }
    return cur;
}

static bool numeq(json_t *a, json_t *b)
{
    return json_is_number(a) && json_is_number(b) && json_number_value(a) == json_number_value(b);
}

/* NULL when the assertion holds, else a malloc'd message. */
static char *check_one(json_t *reply, const char *path, json_t *want)
{
    json_t *got = lookup(reply, path);
    char *gs = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("(absent)");
    char *ws = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
    char *msg = NULL;
    bool ok;
    const char *op = NULL;
    json_t *arg = NULL;
    if (json_is_object(want) && json_object_size(want) == 1) {
        void *it = json_object_iter(want);
        if (json_object_iter_key(it)[0] == '$') {
            op = json_object_iter_key(it);
            arg = json_object_iter_value(it);
        }
    }
    if (op == NULL) {
        ok = got != NULL && (json_equal(got, want) || numeq(got, want));
    } else if (strcmp(op, "$exists") == 0) {
        ok = (got != NULL) == json_is_true(arg);
    } else if (strcmp(op, "$ne") == 0) {
        ok = got == NULL || !(json_equal(got, arg) || numeq(got, arg));
    } else if (strcmp(op, "$contains") == 0) {
        ok = json_is_string(got) && json_is_string(arg) &&
             strstr(json_string_value(got), json_string_value(arg)) != NULL;
    } else if (strcmp(op, "$len") == 0) {
        size_t n = json_is_array(got) ? json_array_size(got)
                   : json_is_string(got) ? json_string_length(got) : (size_t)-1;
        ok = json_is_integer(arg) && n == (size_t)json_integer_value(arg);
    } else if (strcmp(op, "$gt") == 0 || strcmp(op, "$gte") == 0 || strcmp(op, "$lt") == 0 ||
               strcmp(op, "$lte") == 0) {
        double g = json_number_value(got), w = json_number_value(arg);
        ok = json_is_number(got) && json_is_number(arg) &&
             (strcmp(op, "$gt") == 0    ? g > w
              : strcmp(op, "$gte") == 0 ? g >= w
              : strcmp(op, "$lt") == 0  ? g < w
                                        : g <= w);
    } else {
        ok = false;
        if (asprintf(&msg, "%s: unknown operator %s", path, op) < 0)
            msg = NULL;
        free(gs), free(ws);
        return msg ? msg : strdup("unknown operator");
    }
    if (!ok && asprintf(&msg, "%s: expected %s, got %s", path, ws, gs) < 0)
        msg = strdup("assertion failed");
    free(gs), free(ws);
    return msg;
}

static bool profile_ok(sb *s, json_t *obj)
{
    json_t *p = json_object_get(obj, "profiles");
    if (!json_is_array(p))
        return true;
    const char *mine = s->profile == SB_PROFILE_MEMORY ? "memory" : "postgres";
    size_t i;
    json_t *e;
    json_array_foreach(p, i, e) if (json_is_string(e) && strcmp(json_string_value(e), mine) == 0)
        return true;
    return false;
}

static json_t *invalid(const char *why)
{
    return json_pack("{s:b, s:s, s:i, s:i, s:[]}", "ok", 0, "error", why, "passed", 0, "failed",
                     1, "steps");
}

json_t *sb_run_scenario(sb *s, json_t *scen, int *failed)
{
    *failed = 1;
    if (!json_is_object(scen))
        return invalid("a scenario must be a JSON object");
    json_t *steps = json_object_get(scen, "steps");
    if (!json_is_array(steps) || json_array_size(steps) == 0)
        return invalid("a scenario needs a non-empty 'steps' array");
    const char *name = json_string_value(json_object_get(scen, "name"));
    json_t *rep_steps = json_array();
    json_t *report = json_pack("{s:s, s:o}", "name", name ? name : "(unnamed)", "steps", rep_steps);
    if (!profile_ok(s, scen)) {
        *failed = 0;
        sb_update(report, json_pack("{s:b, s:b, s:i, s:i}", "ok", 1, "skipped", 1,
                                             "passed", 0, "failed", 0));
        return report;
    }
    int npass = 0, nfail = 0, nskip = 0;
    size_t i;
    json_t *st;
    json_array_foreach(steps, i, st) {
        json_t *r = json_object();
        json_array_append_new(rep_steps, r);
        const char *sname = json_string_value(json_object_get(st, "name"));
        json_object_set_new(r, "name", sname ? json_string(sname) : json_sprintf("step %zu", i + 1));
        const char *method = json_string_value(json_object_get(st, "method"));
        const char *path = json_string_value(json_object_get(st, "path"));
        json_t *body = json_object_get(st, "body");
        json_t *expect = json_object_get(st, "expect");
        if (!json_is_object(st) || method == NULL || path == NULL ||
            (body != NULL && !json_is_object(body)) || (expect != NULL && !json_is_object(expect))) {
            json_object_set_new(r, "ok", json_false());
            json_object_set_new(r, "failures", json_pack("[s]", "malformed step: needs method, "
                                                                "path, object body/expect"));
            nfail++;
            continue;
        }
        json_object_set_new(r, "method", json_string(method));
        json_object_set_new(r, "path", json_string(path));
        if (!profile_ok(s, st)) {
            json_object_set_new(r, "skipped", json_true());
            json_object_set_new(r, "ok", json_true());
            nskip++;
            continue;
        }
        if (strcmp(path, "/demo/scenario/run") == 0) { /* no recursion */
            json_object_set_new(r, "ok", json_false());
            json_object_set_new(r, "failures", json_pack("[s]", "scenarios cannot run scenarios"));
            nfail++;
            continue;
        }
        sb_reply rep;
        sb_dispatch(s, method, path, body, NULL, &rep);
        json_t *fails = json_array();
        json_t *ws = expect ? json_object_get(expect, "status") : NULL;
        int want_status = ws ? (int)json_integer_value(ws) : 200;
        json_object_set_new(r, "status", json_integer(rep.status));
        if (rep.status != want_status)
            json_array_append_new(fails, json_sprintf("status: expected %d, got %d", want_status,
                                                      rep.status));
        json_t *wj = expect ? json_object_get(expect, "json") : NULL;
        if (wj != NULL) {
            json_t *got = rep.json;
            json_t *parsed = NULL;
            if (got == NULL && (rep.text != NULL || rep.data != NULL))
                got = parsed = json_loadb(rep.text ? rep.text : (const char *)rep.data, rep.len,
                                          0, NULL);
            const char *k;
            json_t *v;
            json_object_foreach(wj, k, v) {
                char *m = got ? check_one(got, k, v) : strdup("reply is not JSON");
                if (m != NULL) {
                    json_array_append_new(fails, json_string(m));
                    free(m);
                }
            }
            json_decref(parsed);
        }
        if (rep.json != NULL)
            json_object_set(r, "reply", rep.json);
        sb_reply_free(&rep);
        bool ok = json_array_size(fails) == 0;
        json_object_set_new(r, "ok", json_boolean(ok));
        json_object_set_new(r, "failures", fails);
        ok ? npass++ : nfail++;
    }
    *failed = nfail;
    sb_update(report, json_pack("{s:b, s:i, s:i, s:i}", "ok", nfail == 0, "passed", npass,
                                         "failed", nfail, "skipped", nskip));
    return report;
}

void sb_h_scenarios(sb *s, sb_req *req, sb_reply *rep)
{
    (void)s, (void)req;
    json_t *arr = json_array();
    for (unsigned i = 0; i < sb_nassets; i++) {
        if (strncmp(sb_assets[i].name, "scenarios/", 10) != 0)
            continue;
        json_t *sc = json_loadb((const char *)sb_assets[i].data, sb_assets[i].len, 0, NULL);
        json_array_append_new(arr, json_pack("{s:s, s:o?}", "file", sb_assets[i].name,
                                             "scenario", sc));
    }
    sb_json(rep, 200, json_pack("{s:o}", "scenarios", arr));
}

void sb_h_scenario_run(sb *s, sb_req *req, sb_reply *rep)
{
    json_t *scen = req->body ? json_object_get(req->body, "scenario") : NULL;
    const char *file;
    if (sb_get_str(req, rep, "file", false, &file))
        return;
    json_t *loaded = NULL;
    if (scen == NULL && file != NULL) {
        const sb_asset *a = sb_asset_find(file);
        if (a == NULL || strncmp(file, "scenarios/", 10) != 0) {
            sb_error(rep, 404, "no built-in scenario %s (see GET /demo/scenarios)", file);
            return;
        }
        scen = loaded = json_loadb((const char *)a->data, a->len, 0, NULL);
    }
    if (scen == NULL) {
        sb_error(rep, 400, "send {\"scenario\": {...}} or {\"file\": \"scenarios/golden.json\"}");
        return;
    }
    if (!json_is_object(scen) || !json_is_array(json_object_get(scen, "steps"))) {
        json_decref(loaded);
        sb_error(rep, 400, "a scenario is an object with a 'steps' array");
        return;
    }
    int failed;
    json_t *report = sb_run_scenario(s, scen, &failed);
    json_decref(loaded);
    sb_json(rep, 200, report);
}
