/*
 * pending.c: the per-transaction invalidation set.
 *
 * NOTIFY serialises every notifying commit on one cluster-wide lock, so triggers never call
 * it (nor LogLogicalMessage, with hydracache.transport = wal): they add wire-escaped args
 * here, deduplicated, and the XACT_EVENT_PRE_COMMIT callback sends the whole set as few
 * messages as the 7999-byte payload limit allows.  (In PG15
 * CommitTransaction() runs the PRE_COMMIT callbacks before PreCommit_Notify(), so what
 * Async_Notify() queues here is still delivered by this commit.)
 *
 * Items are kept in insertion order with the subtransaction that first added them.  Because
 * subtransactions nest, the items of the innermost open subtransaction always form the tail of
 * the array: ROLLBACK TO pops that tail, RELEASE relabels it to the parent.
 *
 * Everything lives in a memory context under TopTransactionContext, so an error anywhere just
 * loses the set together with the transaction; the callbacks only forget the pointers.
 */
#include "hydracache.h"

#include "access/xact.h"
#include "commands/async.h"
#include "replication/message.h"
#include "common/hashfn.h"
#include "storage/proc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

typedef struct HcItem
{
	char	   *arg;			/* wire-escaped, NUL-terminated */
	int			len;
	Oid			count_rel;		/* table whose key count this item adds to, or InvalidOid */
	SubTransactionId subid;		/* subtransaction that first added it */
} HcItem;

typedef struct HcArgEntry
{
	char	   *arg;			/* hash key: pointer to the item's string */
} HcArgEntry;

typedef struct HcRelCount
{
	Oid			relid;
	int64		nkeys;
} HcRelCount;

static MemoryContext hc_cxt = NULL;
static LocalTransactionId hc_lxid = InvalidLocalTransactionId;
static HcItem *hc_items;
static int	hc_nitems;
static int	hc_maxitems;
static HTAB *hc_args;
static HTAB *hc_rel_counts;
static SubTransactionId hc_flush_subid = InvalidSubTransactionId;

static uint32
arg_hash(const void *key, Size keysize)
{
	const char *s = *(char *const *) key;

	return hash_bytes((const unsigned char *) s, (int) strlen(s));
}

static int
arg_match(const void *key1, const void *key2, Size keysize)
{
	return strcmp(*(char *const *) key1, *(char *const *) key2);
}

static void
forget_state(void)
{
	hc_cxt = NULL;
	hc_items = NULL;
	hc_nitems = hc_maxitems = 0;
	hc_args = hc_rel_counts = NULL;
	hc_flush_subid = InvalidSubTransactionId;
	hc_lxid = InvalidLocalTransactionId;
}

/* True when this transaction has a set (the pointers of an ended transaction are stale). */
static bool
have_state(void)
{
	if (hc_cxt != NULL && hc_lxid != MyProc->lxid)
		forget_state();
	return hc_cxt != NULL;
}

static void
ensure_state(void)
{
	HASHCTL		ctl;

	if (have_state())
		return;
	hc_cxt = AllocSetContextCreate(TopTransactionContext, "hydracache pending",
								   ALLOCSET_DEFAULT_SIZES);
	hc_lxid = MyProc->lxid;
	hc_maxitems = 64;
	hc_items = MemoryContextAlloc(hc_cxt, hc_maxitems * sizeof(HcItem));

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(char *);
	ctl.entrysize = sizeof(HcArgEntry);
	ctl.hash = arg_hash;
	ctl.match = arg_match;
	ctl.hcxt = hc_cxt;
	hc_args = hash_create("hydracache pending args", 64, &ctl,
						  HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(HcRelCount);
	ctl.hcxt = hc_cxt;
	hc_rel_counts = hash_create("hydracache pending counts", 8, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * Adds one wire-escaped arg (at most HC_MAX_ARG bytes) unless it is already pending.  When
 * count_rel is valid, a new arg counts as one key of that table (see hc_pending_rel_count).
 * Returns true when the arg was new.
 */
bool
hc_pending_add(const char *arg, int len, Oid count_rel)
{
	HcArgEntry *entry;
	HcItem	   *item;
	bool		found;
	char	   *copy;

	Assert(len > 0 && len <= HC_MAX_ARG);
	ensure_state();
	if (hash_search(hc_args, &arg, HASH_FIND, NULL) != NULL)
		return false;

	/* Allocate everything before touching the hash, so an error leaves it consistent. */
	if (hc_nitems == hc_maxitems)
	{
		hc_items = repalloc_huge(hc_items, 2 * hc_maxitems * sizeof(HcItem));
		hc_maxitems *= 2;
	}
	copy = MemoryContextAlloc(hc_cxt, len + 1);
	memcpy(copy, arg, len);
	copy[len] = '\0';
	entry = hash_search(hc_args, &copy, HASH_ENTER, &found);
	entry->arg = copy;

	item = &hc_items[hc_nitems++];
	item->arg = copy;
	item->len = len;
	item->count_rel = count_rel;
	item->subid = GetCurrentSubTransactionId();

	if (OidIsValid(count_rel))
	{
		HcRelCount *rc = hash_search(hc_rel_counts, &count_rel, HASH_ENTER, &found);

		rc->nkeys = found ? rc->nkeys + 1 : 1;
	}
	return true;
}

bool
hc_pending_contains(const char *arg)
{
	if (!have_state())
		return false;
	return hash_search(hc_args, &arg, HASH_FIND, NULL) != NULL;
}

/* Number of distinct keys of relid pending in this transaction. */
int64
hc_pending_rel_count(Oid relid)
{
	HcRelCount *rc;

	if (!have_state())
		return 0;
	rc = hash_search(hc_rel_counts, &relid, HASH_FIND, NULL);
	return rc ? rc->nkeys : 0;
}

void
hc_pending_flush(void)
{
	ensure_state();
	if (hc_flush_subid == InvalidSubTransactionId)
		hc_flush_subid = GetCurrentSubTransactionId();
}

/*
 * The messages this transaction would send if it committed now, in the current memory
 * context: one flush message if a flush is pending (it covers every tag), otherwise the tags
 * in insertion order, packed into as few payloads of at most HC_MAX_PAYLOAD bytes as fit.
 */
List *
hc_pending_messages(void)
{
	List	   *messages = NIL;
	StringInfoData buf;
	int			i;

	if (!have_state())
		return NIL;
	if (hc_flush_subid != InvalidSubTransactionId)
		return list_make1(pstrdup(HC_FLUSH_MESSAGE));
	if (hc_nitems == 0)
		return NIL;

	initStringInfo(&buf);
	for (i = 0; i < hc_nitems; i++)
	{
		HcItem	   *item = &hc_items[i];

		if (buf.len > 0 && buf.len + 1 + item->len > HC_MAX_PAYLOAD)
		{
			messages = lappend(messages, pstrdup(buf.data));
			resetStringInfo(&buf);
		}
		if (buf.len == 0)
			appendStringInfoString(&buf, HC_TAG_HEADER);
		appendStringInfoChar(&buf, ' ');
		appendBinaryStringInfo(&buf, item->arg, item->len);
	}
	messages = lappend(messages, buf.data);
	return messages;
}

/* hydracache.transport (hydracache.c): NOTIFY, WAL or both. */
extern int	hc_transport;
#define HC_TRANSPORT_NOTIFY 0
#define HC_TRANSPORT_WAL 1
#define HC_TRANSPORT_BOTH 2

/*
 * NOTIFY queues the payload for this commit; the WAL transport writes it as a transactional
 * logical decoding message with the channel as prefix, which commits (and is decoded) with
 * the transaction's changes and takes no cluster-wide lock.  Same payloads either way.
 */
static void
send_pending(void)
{
	List	   *messages = hc_pending_messages();
	ListCell   *lc;

	foreach(lc, messages)
	{
		const char *payload = (const char *) lfirst(lc);

		if (hc_transport != HC_TRANSPORT_WAL)
			Async_Notify(hc_channel, payload);
		if (hc_transport != HC_TRANSPORT_NOTIFY)
			LogLogicalMessage(hc_channel, payload, strlen(payload), true);
	}
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (have_state())
				send_pending();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (have_state() &&
				(hc_nitems > 0 || hc_flush_subid != InvalidSubTransactionId))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has hydracache invalidations pending"),
						 errdetail("Invalidations are sent with NOTIFY, which PREPARE TRANSACTION does not support.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			forget_state();
			break;
		default:
			break;
	}
}

/* Drops the items the aborted subtransaction (or its children) added. */
static void
pop_subxact(SubTransactionId subid)
{
	while (hc_nitems > 0 && hc_items[hc_nitems - 1].subid >= subid)
	{
		HcItem	   *item = &hc_items[--hc_nitems];

		hash_search(hc_args, &item->arg, HASH_REMOVE, NULL);
		if (OidIsValid(item->count_rel))
		{
			HcRelCount *rc = hash_search(hc_rel_counts, &item->count_rel, HASH_FIND, NULL);

			if (rc)
				rc->nkeys--;
		}
	}
	if (hc_flush_subid != InvalidSubTransactionId && hc_flush_subid >= subid)
		hc_flush_subid = InvalidSubTransactionId;
}

/* Hands the committed subtransaction's items to its parent. */
static void
release_subxact(SubTransactionId subid, SubTransactionId parent)
{
	int			i;

	for (i = hc_nitems - 1; i >= 0 && hc_items[i].subid >= subid; i--)
		hc_items[i].subid = parent;
	if (hc_flush_subid != InvalidSubTransactionId && hc_flush_subid >= subid)
		hc_flush_subid = parent;
}

static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	if (!have_state())
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
		pop_subxact(mySubid);
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		release_subxact(mySubid, parentSubid);
}

void
hc_pending_init(void)
{
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
}
