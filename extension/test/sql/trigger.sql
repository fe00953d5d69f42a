-- What each kind of write adds to the transaction's invalidation set.  pending() shows the
-- messages the transaction would send if it committed now (the isolation suite checks
-- what listeners actually receive).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS hydracache;
RESET client_min_messages;
CREATE TABLE users (id int PRIMARY KEY, name text, email text);
CREATE TABLE order_items (order_id int, line int, qty int, note text, PRIMARY KEY (order_id, line));
SELECT hydracache.watch('users', 'user');
SELECT hydracache.watch('order_items', 'order_item', collection => 'orders', columns => ARRAY['qty']);
TRUNCATE users;
DELETE FROM order_items;
CREATE TABLE texts (k text PRIMARY KEY, v text);
SELECT hydracache.watch('texts', 'text', collection => 'texts');

-- INSERT: each new key, then the collection tag.
BEGIN;
INSERT INTO users VALUES (1, 'ann', 'a@x'), (2, 'bob', 'b@x');
SELECT * FROM hydracache.pending();
COMMIT;

-- UPDATE: old key, new key when it differs, collection tag.
BEGIN;
UPDATE users SET name = 'Ann' WHERE id = 1;
SELECT * FROM hydracache.pending();
ROLLBACK;
BEGIN;
UPDATE users SET id = 3 WHERE id = 2;
SELECT * FROM hydracache.pending();
ROLLBACK;

-- An UPDATE that changes nothing sends nothing (binary comparison of old and new values).
BEGIN;
UPDATE users SET name = name;
UPDATE users SET id = 5 WHERE false;
SELECT count(*) AS nothing_pending FROM hydracache.pending();
ROLLBACK;

-- DELETE: old key and collection tag.
BEGIN;
DELETE FROM users WHERE id = 2;
SELECT * FROM hydracache.pending();
ROLLBACK;

-- TRUNCATE: table-wide tag and collection tag.
BEGIN;
TRUNCATE users;
SELECT * FROM hydracache.pending();
-- Once the table-wide tag is pending, later writes add no keys of that table.
INSERT INTO users VALUES (7, 'g');
SELECT * FROM hydracache.pending();
ROLLBACK;

-- Multi-column keys, watched columns: only qty (and the key columns) matter.
INSERT INTO order_items VALUES (7, 1, 2, 'n'), (7, 2, 1, 'n');
BEGIN;
UPDATE order_items SET note = 'changed';
SELECT count(*) AS unwatched_column_sends_nothing FROM hydracache.pending();
UPDATE order_items SET qty = qty + 1 WHERE line = 2;
UPDATE order_items SET line = 3 WHERE line = 1;
SELECT * FROM hydracache.pending();
ROLLBACK;

-- COPY
BEGIN;
COPY users FROM STDIN;
10	copy	c@x
11	copy	\N
\.
SELECT * FROM hydracache.pending();
ROLLBACK;

-- INSERT ... ON CONFLICT: inserted rows via the INSERT trigger, updated ones via UPDATE.
BEGIN;
INSERT INTO users VALUES (1, 'ann2'), (20, 'new') ON CONFLICT (id) DO UPDATE SET name = excluded.name;
SELECT * FROM hydracache.pending();
ROLLBACK;
BEGIN;
INSERT INTO users VALUES (1, 'x') ON CONFLICT DO NOTHING;
SELECT count(*) AS conflict_do_nothing_sends_nothing FROM hydracache.pending();
ROLLBACK;

-- MERGE
BEGIN;
MERGE INTO users u USING (VALUES (1, 'merged'), (30, 'm')) s(id, name) ON u.id = s.id
  WHEN MATCHED THEN UPDATE SET name = s.name
  WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.name);
SELECT * FROM hydracache.pending();
ROLLBACK;

-- Key values that need escaping: key segment escaping, then wire (percent) escaping.
BEGIN;
INSERT INTO texts VALUES ('*'), (''), ('a:b'), ('back\slash'), ('\N'), ('two words'),
    ('100%'), (E'tab\there'), ('"quoted"'), ('it''s'), ('héllo 日本');
SELECT * FROM hydracache.pending();
ROLLBACK;

-- NULL key values (key_columns on a nullable column).
CREATE TABLE nullable (a int, b text);
SELECT hydracache.watch('nullable', 'n', ARRAY['a', 'b']);
BEGIN;
INSERT INTO nullable VALUES (NULL, NULL), (1, NULL), (NULL, '');
SELECT * FROM hydracache.pending();
ROLLBACK;

-- Long keys are split over several messages of at most 7999 bytes, never truncated.
BEGIN;
INSERT INTO texts SELECT repeat(chr(96 + g), 3000) FROM generate_series(1, 5) g;
SELECT octet_length(p) AS bytes, left(p, 20) AS starts, right(p, 10) AS ends,
       array_length(string_to_array(p, ' '), 1) - 3 AS args
  FROM hydracache.pending() p;
ROLLBACK;
-- A key too long for one message on its own becomes the table-wide tag.
BEGIN;
INSERT INTO texts VALUES ('short'), (repeat('x', 7990)), ('short2');
SELECT * FROM hydracache.pending();
ROLLBACK;
-- ...as does one that only grows too long through escaping (a space is 3 bytes on the wire).
BEGIN;
INSERT INTO texts VALUES (repeat(' ', 2700));
SELECT * FROM hydracache.pending();
ROLLBACK;

-- Key text does not depend on the writer's settings: dates ISO, timestamptz in UTC, ...
CREATE TABLE events (at timestamptz, day date, span interval, x float8, PRIMARY KEY (at, day, span, x));
SELECT hydracache.watch('events', 'event');
BEGIN;
SET LOCAL DateStyle = 'German';
SET LOCAL TimeZone = 'Asia/Tokyo';
SET LOCAL IntervalStyle = 'sql_standard';
SET LOCAL extra_float_digits = -3;
INSERT INTO events VALUES ('2024-05-01 09:00:00+09', '2024-05-01', '1 day 2 hours', 0.1);
SELECT * FROM hydracache.pending();
-- ...and the writer's settings are back afterwards.
SHOW DateStyle;
SHOW TimeZone;
ROLLBACK;
DROP TABLE events;

-- Partitioned tables use row-level triggers (cloned onto every partition), so writes
-- addressed to a partition are seen too.
CREATE TABLE measures (id int, at date, v int, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE measures_2024 PARTITION OF measures FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
SELECT hydracache.watch('measures', 'measure');
CREATE TABLE measures_2025 PARTITION OF measures FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
SELECT tgrelid::regclass, tgname, tgenabled FROM pg_trigger
 WHERE tgrelid::regclass::text LIKE 'measures%' ORDER BY 1, 2;
BEGIN;
INSERT INTO measures VALUES (1, '2024-05-01', 1), (2, '2025-05-01', 2);
INSERT INTO measures_2025 VALUES (3, '2025-06-01', 3);
UPDATE measures SET at = '2025-05-02' WHERE id = 1;
UPDATE measures_2025 SET v = v WHERE id = 3;
DELETE FROM measures_2025 WHERE id = 2;
SELECT * FROM hydracache.pending();
ROLLBACK;
BEGIN;
TRUNCATE measures_2024;
SELECT * FROM hydracache.pending();
ROLLBACK;
SELECT hydracache.unwatch('measures');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid::regclass::text LIKE 'measures%';

-- Statements whose transition tables spill to disk (work_mem is small): old and new rows of
-- an UPDATE still pair up, so exactly the changed rows are reported.
BEGIN;
SET LOCAL work_mem = '64kB';
SET LOCAL hydracache.bulk_threshold = 0;
INSERT INTO users SELECT g, 'spill' FROM generate_series(1000, 5999) g;
SELECT count(*) AS args, count(DISTINCT a) AS distinct_args
  FROM hydracache.pending() p, unnest(string_to_array(p, ' ')) WITH ORDINALITY u(a, n) WHERE n > 3;
ROLLBACK;
BEGIN;
SET LOCAL work_mem = '64kB';
SET LOCAL hydracache.bulk_threshold = 0;
INSERT INTO users SELECT g, 'spill', repeat('e', 100) FROM generate_series(1000, 5999) g;
COMMIT;
BEGIN;
SET LOCAL work_mem = '64kB';
SET LOCAL hydracache.bulk_threshold = 0;
UPDATE users SET name = CASE WHEN id % 7 = 0 THEN 'seventh' ELSE name END WHERE id >= 1000;
SELECT count(*) AS args,
       count(*) FILTER (WHERE a = 'users') AS collection,
       count(*) FILTER (WHERE a LIKE 'user:%' AND substr(a, 6)::int % 7 = 0) AS multiples_of_7
  FROM hydracache.pending() p, unnest(string_to_array(p, ' ')) WITH ORDINALITY u(a, n) WHERE n > 3;
ROLLBACK;
DELETE FROM users WHERE id >= 1000;

-- A statement touching no rows sends nothing.
BEGIN;
DELETE FROM users WHERE false;
INSERT INTO users SELECT 1, 'x' WHERE false;
SELECT count(*) AS nothing_pending FROM hydracache.pending();
ROLLBACK;

DROP TABLE nullable, measures;
DROP TABLE users, order_items, texts;
