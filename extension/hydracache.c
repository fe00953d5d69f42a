/*
 * hydracache.c: module setup (GUCs, transaction callbacks) and the SQL-callable C functions
 * other than the trigger: the key/tag helpers, invalidate(), flush(), pending() and the
 * trigger-argument decoder behind the hydracache.watched view.
 */
#include "hydracache.h"

#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/tuplestore.h"

PG_MODULE_MAGIC;

/* hydracache.transport values (pending.c declares the same). */
#define HC_TRANSPORT_NOTIFY 0
#define HC_TRANSPORT_WAL 1
#define HC_TRANSPORT_BOTH 2

char	   *hc_channel = NULL;
int			hc_bulk_threshold = 1000;
int			hc_xact_bulk_threshold = 100000;
bool		hc_enabled = true;
int			hc_transport = HC_TRANSPORT_NOTIFY;	/* read by pending.c */

static const struct config_enum_entry transport_options[] = {
	{"notify", HC_TRANSPORT_NOTIFY, false},
	{"wal", HC_TRANSPORT_WAL, false},
	{"both", HC_TRANSPORT_BOTH, false},
	{NULL, 0, false}
};

void		_PG_init(void);

static bool
check_channel(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
	{
		GUC_check_errdetail("The channel name must not be empty.");
		return false;
	}
	if (strlen(*newval) >= NAMEDATALEN)
	{
		GUC_check_errdetail("The channel name must be shorter than %d bytes.", NAMEDATALEN);
		return false;
	}
	return true;
}

void
_PG_init(void)
{
	/*
	 * channel and enabled are superuser-only: a role allowed to change them could make its
	 * own writes invisible to every cache.
	 */
	DefineCustomStringVariable("hydracache.channel",
							   "NOTIFY channel that hydracache invalidations are sent on.",
							   "The value in effect at COMMIT is used.",
							   &hc_channel, "hydracache", PGC_SUSET, 0,
							   check_channel, NULL, NULL);
	DefineCustomIntVariable("hydracache.bulk_threshold",
							"A statement touching more rows of a watched table sends one table-wide tag instead of one key per row.",
							"0 means never.",
							&hc_bulk_threshold, 1000, 0, INT_MAX, PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("hydracache.xact_bulk_threshold",
							"A transaction collecting more distinct keys of one watched table sends its table-wide tag instead of further keys.",
							"Bounds the memory of the pending set; 0 means never.",
							&hc_xact_bulk_threshold, 100000, 0, INT_MAX, PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("hydracache.enabled",
							 "Whether watched tables collect invalidations.",
							 NULL,
							 &hc_enabled, true, PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomEnumVariable("hydracache.transport",
							 "How invalidations leave a committing transaction: notify (NOTIFY on hydracache.channel), wal (a transactional logical decoding message with prefix hydracache.channel, read by clients through logical replication) or both.",
							 "The value in effect at COMMIT is used.  wal needs wal_level = logical to be read.",
							 &hc_transport, HC_TRANSPORT_NOTIFY, transport_options, PGC_SUSET, 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("hydracache");
	hc_pending_init();
}

/* Text of a non-NULL text Datum, or an error naming what must not be empty. */
static char *
nonempty_text(text *t, const char *what)
{
	char	   *s = text_to_cstring(t);

	if (s[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what)));
	return s;
}

static void
text_array(ArrayType *arr, const char *what, Datum **elems, bool **nulls, int *n)
{
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", what)));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, elems, nulls, n);
	if (*n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what)));
}

PG_FUNCTION_INFO_V1(hydracache_entity_key);
Datum
hydracache_entity_key(PG_FUNCTION_ARGS)
{
	char	   *entity = nonempty_text(PG_GETARG_TEXT_PP(0), "entity");
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	StringInfoData buf;

	text_array(PG_GETARG_ARRAYTYPE_P(1), "key_values", &elems, &nulls, &n);
	initStringInfo(&buf);
	hc_append_segment(&buf, entity);
	for (i = 0; i < n; i++)
	{
		appendStringInfoChar(&buf, ':');
		hc_append_segment(&buf, nulls[i] ? NULL : TextDatumGetCString(elems[i]));
	}
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

PG_FUNCTION_INFO_V1(hydracache_table_tag);
Datum
hydracache_table_tag(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	initStringInfo(&buf);
	hc_append_segment(&buf, nonempty_text(PG_GETARG_TEXT_PP(0), "entity"));
	appendStringInfoString(&buf, ":*");
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

PG_FUNCTION_INFO_V1(hydracache_collection_tag);
Datum
hydracache_collection_tag(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	initStringInfo(&buf);
	hc_append_segment(&buf, nonempty_text(PG_GETARG_TEXT_PP(0), "collection"));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

PG_FUNCTION_INFO_V1(hydracache_invalidate);
Datum
hydracache_invalidate(PG_FUNCTION_ARGS)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	StringInfoData arg;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tags must not be NULL")));
	PreventCommandDuringRecovery("hydracache.invalidate()");
	text_array(PG_GETARG_ARRAYTYPE_P(0), "tags", &elems, &nulls, &n);

	/* Check every tag before adding any, so a bad call adds nothing. */
	initStringInfo(&arg);
	for (i = 0; i < n; i++)
	{
		text	   *t;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("a tag must not be NULL")));
		t = DatumGetTextPP(elems[i]);
		if (VARSIZE_ANY_EXHDR(t) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a tag must not be empty")));
		resetStringInfo(&arg);
		hc_append_wire(&arg, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
		if (arg.len > HC_MAX_ARG)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("tag is too long for a notification (%d bytes escaped, at most %d)",
							arg.len, HC_MAX_ARG)));
		elems[i] = PointerGetDatum(pnstrdup(arg.data, arg.len));
	}
	for (i = 0; i < n; i++)
	{
		char	   *a = DatumGetPointer(elems[i]);

		hc_pending_add(a, (int) strlen(a), InvalidOid);
	}
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(hydracache_flush);
Datum
hydracache_flush(PG_FUNCTION_ARGS)
{
	PreventCommandDuringRecovery("hydracache.flush()");
	hc_pending_flush();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(hydracache_pending);
Datum
hydracache_pending(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC | MAT_SRF_BLESS);
	foreach(lc, hc_pending_messages())
	{
		Datum		value = CStringGetTextDatum((char *) lfirst(lc));
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
	return (Datum) 0;
}

/* pg_trigger.tgargs (each argument followed by a NUL byte) as text[]. */
PG_FUNCTION_INFO_V1(hydracache_trigger_args);
Datum
hydracache_trigger_args(PG_FUNCTION_ARGS)
{
	bytea	   *raw = PG_GETARG_BYTEA_PP(0);
	const char *p = VARDATA_ANY(raw);
	const char *end = p + VARSIZE_ANY_EXHDR(raw);
	ArrayBuildState *astate = initArrayResult(TEXTOID, CurrentMemoryContext, false);

	while (p < end)
	{
		const char *nul = memchr(p, '\0', end - p);
		int			len = nul ? (int) (nul - p) : (int) (end - p);

		pg_verifymbstr(p, len, false);
		astate = accumArrayResult(astate, PointerGetDatum(cstring_to_text_with_len(p, len)),
								  false, TEXTOID, CurrentMemoryContext);
		p += len + 1;
	}
	PG_RETURN_DATUM(makeArrayResult(astate, CurrentMemoryContext));
}
