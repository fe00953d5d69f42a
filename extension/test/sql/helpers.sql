-- The SQL helpers share the trigger's escaping code (docs/PROTOCOL.md).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS hydracache;
RESET client_min_messages;
SELECT hydracache.entity_key('user', '42');
SELECT hydracache.entity_key('order_item', '7', '3');
SELECT hydracache.entity_key('user', NULL);
SELECT hydracache.entity_key('user', '');
SELECT hydracache.entity_key('user', '*');
SELECT hydracache.entity_key('us:er*', 'a\b:c');
SELECT hydracache.table_tag('user');
SELECT hydracache.table_tag('us:er');
SELECT hydracache.collection_tag('users');
SELECT hydracache.collection_tag('my:coll*');

-- A table-wide tag never equals an entity key, whatever the key value.
SELECT v, hydracache.entity_key('user', v) <> hydracache.table_tag('user') AS distinct_from_table_tag
  FROM unnest(ARRAY['*', '', NULL, ':*', '\*', '\', ':']) v;

-- Bad input
SELECT hydracache.entity_key(NULL, '1') IS NULL AS null_entity_gives_null;
SELECT hydracache.entity_key('', '1');
SELECT hydracache.entity_key('user', VARIADIC '{}'::text[]);
SELECT hydracache.entity_key('user', VARIADIC '{{1,2},{3,4}}'::text[]);
SELECT hydracache.table_tag('');
SELECT hydracache.collection_tag('');

-- Shared key vectors (tests/vectors/keys.tsv; psql runs in the extension directory).
CREATE TEMP TABLE key_vectors (segments text[], key text);
\copy key_vectors FROM '../tests/vectors/keys.tsv'
SELECT count(*) AS key_vectors FROM key_vectors;
SELECT segments, key,
       CASE WHEN cardinality(segments) = 1 THEN hydracache.collection_tag(segments[1])
            ELSE hydracache.entity_key(segments[1], VARIADIC segments[2:]) END AS computed
  FROM key_vectors
 WHERE key IS DISTINCT FROM
       CASE WHEN cardinality(segments) = 1 THEN hydracache.collection_tag(segments[1])
            ELSE hydracache.entity_key(segments[1], VARIADIC segments[2:]) END;

-- Shared wire vectors (tests/vectors/wire_v1.tsv): every valid message of origin db is what
-- invalidate()/flush() would send for its args.  Each row runs in a subtransaction that is
-- rolled back, which also shows that a rolled-back subtransaction's tags are dropped.
CREATE TEMP TABLE wire_vectors (valid boolean, payload text, origin text, op text, args text[]);
\copy wire_vectors FROM '../tests/vectors/wire_v1.tsv'
SELECT valid, count(*) FROM wire_vectors GROUP BY valid ORDER BY valid;
CREATE TEMP TABLE wire_results (payload text, sent text[]);
DO $$
DECLARE
    v record;
    sent text[];
BEGIN
    FOR v IN SELECT * FROM wire_vectors WHERE valid AND origin = 'db' LOOP
        BEGIN
            IF v.op = 'f' THEN
                PERFORM hydracache.flush();
            ELSE
                PERFORM hydracache.invalidate(VARIADIC v.args);
            END IF;
            SELECT array_agg(p) INTO sent FROM hydracache.pending() p;
            RAISE EXCEPTION 'roll back';
        EXCEPTION WHEN raise_exception THEN
            INSERT INTO wire_results VALUES (v.payload, sent);
        END;
    END LOOP;
END
$$;
SELECT count(*) AS db_vectors_checked FROM wire_results;
-- Only the vector written with lower-case hex (which decoders accept) differs.
SELECT payload, sent FROM wire_results WHERE sent IS DISTINCT FROM ARRAY[payload];
SELECT * FROM hydracache.pending();
