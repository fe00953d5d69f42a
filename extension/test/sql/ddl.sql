-- DDL that changes the rows queries of a watched table return sends that table's table-wide
-- and collection tags, and those of every watched partitioned table above it (event
-- triggers hydracache_ddl_end on ALTER TABLE and hydracache_ddl_drop on DROP TABLE).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS hydracache;
RESET client_min_messages;
CREATE TABLE parts (id int, k int, v int, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
CREATE TABLE parts_1 PARTITION OF parts FOR VALUES IN (1);
CREATE TABLE parts_2 PARTITION OF parts FOR VALUES IN (2) PARTITION BY LIST (id);
CREATE TABLE parts_2a PARTITION OF parts_2 FOR VALUES IN (1);
CREATE TABLE parts_2b PARTITION OF parts_2 FOR VALUES IN (2);
CREATE TABLE parts_3 (id int, k int, v int, PRIMARY KEY (id, k));
SELECT hydracache.watch('parts', 'part');
CREATE TABLE plain (id int PRIMARY KEY, v int);
SELECT hydracache.watch('plain', 'pl', collection => 'plains');
CREATE TABLE bystander (id int PRIMARY KEY, v int);

-- DETACH PARTITION: its rows leave the parent.
BEGIN;
ALTER TABLE parts DETACH PARTITION parts_1;
SELECT * FROM hydracache.pending();
ROLLBACK;
-- ATTACH PARTITION: its rows join the parent.
BEGIN;
ALTER TABLE parts ATTACH PARTITION parts_3 FOR VALUES IN (3);
SELECT * FROM hydracache.pending();
ROLLBACK;
-- DROP TABLE of a partition, also one level further down.
BEGIN;
DROP TABLE parts_1;
SELECT * FROM hydracache.pending();
ROLLBACK;
BEGIN;
DROP TABLE parts_2b;
SELECT * FROM hydracache.pending();
ROLLBACK;
BEGIN;
ALTER TABLE parts_2 DETACH PARTITION parts_2a;
SELECT * FROM hydracache.pending();
ROLLBACK;
-- A DROP naming several tables reaches each watched one; a watched table dropped itself too.
BEGIN;
DROP TABLE bystander, parts_1, plain;
SELECT * FROM hydracache.pending();
ROLLBACK;
-- ALTER COLUMN ... TYPE rewrites values; ADD/DROP/RENAME COLUMN change the rows' shape.
BEGIN;
ALTER TABLE plain ALTER COLUMN v TYPE text USING (v * 2)::text;
SELECT * FROM hydracache.pending();
ROLLBACK;
BEGIN;
ALTER TABLE parts ALTER COLUMN v TYPE bigint;
SELECT * FROM hydracache.pending();
ROLLBACK;
BEGIN;
ALTER TABLE plain ADD COLUMN w int DEFAULT 7;
SELECT * FROM hydracache.pending();
ROLLBACK;
BEGIN;
ALTER TABLE plain DROP COLUMN v;
SELECT * FROM hydracache.pending();
ROLLBACK;
BEGIN;
ALTER TABLE plain RENAME COLUMN v TO v2;
SELECT * FROM hydracache.pending();
ROLLBACK;

-- DDL that changes no visible row, or concerns no watched table, sends nothing and never
-- fails because of the event triggers (missing tables and schemas included).
BEGIN;
ALTER TABLE plain ALTER COLUMN v SET DEFAULT 1;
ALTER TABLE plain ADD CONSTRAINT v_positive CHECK (v > 0) NOT VALID;
CREATE INDEX plain_v ON plain (v);
ALTER INDEX plain_v RENAME TO plain_v2;
ALTER TABLE plain RENAME CONSTRAINT v_positive TO v_pos;
ALTER TABLE bystander ALTER COLUMN v TYPE bigint;
ALTER TABLE bystander ADD COLUMN w int;
ALTER TABLE IF EXISTS no_such_table ADD COLUMN x int;
ALTER TABLE IF EXISTS no_such_schema.t DETACH PARTITION x;
DROP TABLE IF EXISTS no_such_table, no_such_schema.t;
DROP TABLE bystander;
CREATE VIEW plain_view AS SELECT * FROM plain;
ALTER VIEW plain_view RENAME COLUMN v TO vv;
DROP VIEW plain_view;
SELECT count(*) AS nothing_pending FROM hydracache.pending();
ROLLBACK;

-- Failed DDL in a rolled-back savepoint leaves nothing behind.
BEGIN;
SAVEPOINT s;
ALTER TABLE plain ADD COLUMN x int;
ROLLBACK TO s;
SAVEPOINT s2;
ALTER TABLE parts ATTACH PARTITION plain FOR VALUES IN (4);
ROLLBACK TO s2;
SELECT count(*) AS nothing_pending FROM hydracache.pending();
ROLLBACK;

-- hydracache.enabled = off collects nothing for DDL either.
BEGIN;
SET LOCAL hydracache.enabled = off;
ALTER TABLE plain ADD COLUMN x int;
SELECT count(*) AS nothing_pending FROM hydracache.pending();
ROLLBACK;

-- A non-superuser owner's DDL works and is seen (the event trigger runs with its rights).
CREATE ROLE regress_hc_ddl;
CREATE TABLE ddl_owned (id int PRIMARY KEY, v int);
ALTER TABLE ddl_owned OWNER TO regress_hc_ddl;
SELECT hydracache.watch('ddl_owned', 'own');
SET ROLE regress_hc_ddl;
BEGIN;
ALTER TABLE ddl_owned ALTER COLUMN v TYPE bigint;
SELECT * FROM hydracache.pending();
ROLLBACK;
RESET ROLE;
DROP TABLE ddl_owned;
DROP ROLE regress_hc_ddl;

DROP TABLE parts, parts_3, plain;
