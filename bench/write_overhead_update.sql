-- pgbench script for bench/write_overhead.sh: update one random row of bench_items by id.
\set id random(1, 100000)
UPDATE bench_items SET v = v + 1 WHERE id = :id;
