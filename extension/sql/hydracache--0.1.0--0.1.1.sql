-- hydracache 0.1.0 -> 0.1.1: adds hydracache.pending(), the messages the current
-- transaction would send if it committed now (for tests and debugging).

\echo Use "ALTER EXTENSION hydracache UPDATE TO '0.1.1'" to load this file. \quit

CREATE FUNCTION hydracache.pending() RETURNS SETOF pg_catalog.text
    AS 'MODULE_PATHNAME', 'hydracache_pending'
    LANGUAGE C VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION hydracache.pending() IS
    'Payloads the current transaction would NOTIFY if it committed now';
