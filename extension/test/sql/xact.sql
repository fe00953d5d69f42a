-- Transactions, subtransactions, thresholds and settings.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS hydracache;
RESET client_min_messages;
CREATE TABLE users (id int PRIMARY KEY, name text, email text);
SELECT hydracache.watch('users', 'user');
-- A new session, which has not loaded the library yet.
\c

-- A value set before the library is loaded in this session (a placeholder) is kept once it
-- loads; hydracache.* names it does not define are rejected from then on.
SET hydracache.bulk_threshold = 2;
SET hydracache.typo_threshold = 1;
SELECT hydracache.table_tag('load');
SHOW hydracache.bulk_threshold;
SHOW hydracache.typo_threshold;
RESET hydracache.bulk_threshold;
TRUNCATE users;
INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 10) g;

-- Nothing survives a rollback; a new transaction starts empty.
BEGIN;
DELETE FROM users WHERE id = 1;
ROLLBACK;
SELECT count(*) AS nothing_pending FROM hydracache.pending();

-- Duplicates collapse.
BEGIN;
UPDATE users SET name = 'a' WHERE id = 1;
UPDATE users SET name = 'b' WHERE id = 1;
SELECT hydracache.invalidate('user:1', 'users', 'extra');
SELECT * FROM hydracache.pending();
ROLLBACK;

-- ROLLBACK TO drops the subtransaction's tags and keeps the outer ones; RELEASE keeps both.
BEGIN;
UPDATE users SET name = 'x' WHERE id = 1;
SAVEPOINT a;
UPDATE users SET name = 'x' WHERE id = 2;
SAVEPOINT b;
UPDATE users SET name = 'x' WHERE id IN (1, 3);
SELECT * FROM hydracache.pending();
ROLLBACK TO a;
SELECT * FROM hydracache.pending();
SAVEPOINT c;
UPDATE users SET name = 'x' WHERE id = 4;
RELEASE c;
SAVEPOINT d;
SELECT hydracache.flush();
SELECT * FROM hydracache.pending();
ROLLBACK TO d;
SELECT * FROM hydracache.pending();
COMMIT;

-- A PL/pgSQL exception block is a subtransaction too.
BEGIN;
DO $$
BEGIN
    UPDATE users SET name = 'kept' WHERE id = 5;
    BEGIN
        UPDATE users SET name = 'lost' WHERE id = 6;
        RAISE EXCEPTION 'undo';
    EXCEPTION WHEN raise_exception THEN NULL;
    END;
END
$$;
SELECT * FROM hydracache.pending();
ROLLBACK;

-- Bulk threshold: more rows than this in one statement -> table-wide + collection tag.
SET hydracache.bulk_threshold = 3;
BEGIN;
UPDATE users SET name = 'bulk' WHERE id <= 3;
SELECT * FROM hydracache.pending();
ROLLBACK;
BEGIN;
UPDATE users SET name = 'bulk' WHERE id <= 4;
SELECT * FROM hydracache.pending();
ROLLBACK;
BEGIN;
DELETE FROM users WHERE id <= 4;
SELECT * FROM hydracache.pending();
ROLLBACK;
-- An UPDATE of many rows that changes nothing watched still sends nothing.
BEGIN;
UPDATE users SET name = name;
SELECT count(*) AS nothing_pending FROM hydracache.pending();
ROLLBACK;
-- The table-wide tag of a rolled-back savepoint no longer suppresses keys.
BEGIN;
SAVEPOINT s;
DELETE FROM users;
ROLLBACK TO s;
UPDATE users SET name = 'one' WHERE id = 1;
SELECT * FROM hydracache.pending();
ROLLBACK;
SET hydracache.bulk_threshold = 0;
BEGIN;
UPDATE users SET name = 'never bulk';
SELECT array_length(string_to_array(p, ' '), 1) - 3 AS args, p LIKE '%user:*%' AS table_wide
  FROM hydracache.pending() p;
ROLLBACK;
RESET hydracache.bulk_threshold;

-- Per transaction: more distinct keys of one table than xact_bulk_threshold -> table-wide.
SET hydracache.xact_bulk_threshold = 3;
BEGIN;
UPDATE users SET name = 'z' WHERE id = 1;
UPDATE users SET name = 'z' WHERE id = 2;
UPDATE users SET name = 'z' WHERE id = 3;
SELECT * FROM hydracache.pending();
UPDATE users SET name = 'z' WHERE id = 4;
UPDATE users SET name = 'z' WHERE id = 5;
SELECT * FROM hydracache.pending();
ROLLBACK;
RESET hydracache.xact_bulk_threshold;

-- ...counting the keys of all partitions of a partitioned table together.
CREATE TABLE pm (id int PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE pm_lo PARTITION OF pm FOR VALUES FROM (0) TO (100);
CREATE TABLE pm_hi PARTITION OF pm FOR VALUES FROM (100) TO (200);
SELECT hydracache.watch('pm', 'pm');
SET hydracache.xact_bulk_threshold = 2;
BEGIN;
INSERT INTO pm VALUES (1), (101), (2);
SELECT * FROM hydracache.pending();
ROLLBACK;
RESET hydracache.xact_bulk_threshold;
DROP TABLE pm;

-- session_replication_role = replica (logical replication apply): triggers still fire.
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE users SET name = 'replicated' WHERE id = 1;
SELECT * FROM hydracache.pending();
ROLLBACK;
-- Each write is seen by exactly one kind of trigger.  With bulk_threshold = 1, a two-row
-- UPDATE in an ordinary session sends only the table-wide tag (the statement trigger; a row
-- trigger firing too would have added the keys first), while under the replica role it
-- sends the keys (the row triggers, as the apply worker fires them; the statement trigger
-- firing too would have added the table-wide tag).  test/replication.sh checks a
-- real subscription.
SET hydracache.bulk_threshold = 1;
BEGIN;
UPDATE users SET name = 'origin' WHERE id IN (1, 2);
SELECT * FROM hydracache.pending();
ROLLBACK;
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE users SET name = 'replica' WHERE id IN (1, 2);
INSERT INTO users VALUES (9001, 'r'), (9002, 'r');
DELETE FROM users WHERE id = 9001;
TRUNCATE users;
SELECT * FROM hydracache.pending();
ROLLBACK;
RESET hydracache.bulk_threshold;

-- hydracache.enabled = off (superuser only) stops collecting; invalidate() still works.
BEGIN;
SET LOCAL hydracache.enabled = off;
UPDATE users SET name = 'quiet' WHERE id = 1;
SELECT hydracache.invalidate('explicit');
SELECT * FROM hydracache.pending();
ROLLBACK;

-- The channel is a superuser setting, checked when set.
-- (roles are cluster-wide: clear leftovers of an interrupted run)
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_hc_app;
RESET client_min_messages;
CREATE ROLE regress_hc_app;
SET ROLE regress_hc_app;
SET hydracache.channel = 'elsewhere';
SET hydracache.enabled = off;
SET hydracache.bulk_threshold = 5;
RESET ROLE;
DROP ROLE regress_hc_app;
SET hydracache.channel = 'elsewhere';
SHOW hydracache.channel;
RESET hydracache.channel;

-- invalidate() and flush()
BEGIN;
SELECT hydracache.invalidate('a tag', '100%', 'user:*');
SELECT * FROM hydracache.pending();
SELECT hydracache.flush();
SELECT * FROM hydracache.pending();
ROLLBACK;
SELECT hydracache.invalidate(NULL);
SELECT hydracache.invalidate('ok', NULL);
SELECT hydracache.invalidate('ok', '');
SELECT hydracache.invalidate(VARIADIC '{}'::text[]);
SELECT hydracache.invalidate(repeat('x', 7991));
SELECT hydracache.invalidate(repeat(' ', 2700));
BEGIN;
SELECT hydracache.invalidate(repeat('x', 7990));
SELECT octet_length(p) FROM hydracache.pending() p;
ROLLBACK;

-- PREPARE TRANSACTION cannot carry notifications.
BEGIN;
UPDATE users SET name = 'prepared' WHERE id = 1;
PREPARE TRANSACTION 'hc';
SELECT count(*) AS not_prepared FROM pg_prepared_xacts;

-- An unwatched table sends nothing.
SELECT hydracache.unwatch('users');
BEGIN;
UPDATE users SET name = 'unwatched';
SELECT count(*) AS nothing_pending FROM hydracache.pending();
ROLLBACK;

-- DROP EXTENSION needs CASCADE while tables are watched, and then drops their triggers.
SELECT hydracache.watch('users', 'user');
\set VERBOSITY terse
DROP EXTENSION hydracache;
DROP EXTENSION hydracache CASCADE;
\set VERBOSITY default
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname LIKE 'hydracache%';
DROP TABLE users;
