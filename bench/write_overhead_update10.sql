-- pgbench script for bench/write_overhead.sh: ten single-row UPDATEs in one transaction.
\set id1 random(1, 100000)
\set id2 random(1, 100000)
\set id3 random(1, 100000)
\set id4 random(1, 100000)
\set id5 random(1, 100000)
\set id6 random(1, 100000)
\set id7 random(1, 100000)
\set id8 random(1, 100000)
\set id9 random(1, 100000)
\set id10 random(1, 100000)
BEGIN;
UPDATE bench_items SET v = v + 1 WHERE id = :id1;
UPDATE bench_items SET v = v + 1 WHERE id = :id2;
UPDATE bench_items SET v = v + 1 WHERE id = :id3;
UPDATE bench_items SET v = v + 1 WHERE id = :id4;
UPDATE bench_items SET v = v + 1 WHERE id = :id5;
UPDATE bench_items SET v = v + 1 WHERE id = :id6;
UPDATE bench_items SET v = v + 1 WHERE id = :id7;
UPDATE bench_items SET v = v + 1 WHERE id = :id8;
UPDATE bench_items SET v = v + 1 WHERE id = :id9;
UPDATE bench_items SET v = v + 1 WHERE id = :id10;
COMMIT;
