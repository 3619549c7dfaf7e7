/*
 * zfs-mkpool: create a ZFS pool image with the REAL OpenZFS code (userland
 * libzpool: the same spa/vdev/dmu/zap/sa code the kernel module runs, as used
 * by zdb/ztest/zhack), with 'disk' leaf vdevs that carry chosen path,
 * phys_path and devid strings, optional datasets holding a minimal ZPL
 * (root directory, sub-directories, regular files), pool/dataset
 * properties, and finally export the pool (labels then say state EXPORTED).
 *
 * In userland libzpool a 'disk' vdev is opened exactly like a 'file' vdev,
 * through its 'path'.  So every path given with -d must be openable when this
 * program runs; make-real-pool.sh arranges that with a private mount
 * namespace in which /dev/dsk/<name> is a symlink to the output file.
 *
 * Usage:
 *   zfs-mkpool [options] POOL
 *     -d PATH        add a leaf 'disk' vdev opened at PATH (repeatable)
 *     -P PHYS_PATH   phys_path of the last -d
 *     -I DEVID       devid of the last -d
 *     -w 0|1         whole_disk of the last -d (default 0)
 *     -m             make one mirror of all -d vdevs (default: each -d is
 *                    a top-level vdev; one -d = a single-disk pool)
 *     -z NPARITY     make one raidz vdev (raidz1..3) of all -d vdevs
 *     -a ASHIFT      ashift of the top-level vdev(s) (default 9)
 *     -o PROP=VAL    pool property at creation (version=28, comment=...,
 *                    feature@NAME=enabled, ...).  If no feature@ and no
 *                    version is given, all features are enabled, like
 *                    'zpool create' does.
 *     -c DATASET     create POOL/DATASET (type filesystem, with a ZPL)
 *     -O PROP=VAL    set a property on the last -c dataset (or on the pool's
 *                    root dataset when no -c came before it)
 *     -f DS:/PATH=HOSTFILE   copy HOSTFILE into dataset DS (relative to the
 *                    pool, "" = root dataset) at /PATH; missing directories
 *                    are created.  The root dataset gets a ZPL when used.
 *     -b DATASET     set the pool's bootfs property to POOL/DATASET
 *     -n             do not export (leave the pool state ACTIVE)
 *     -S SECONDS     keep the pool open and idle that long before exporting
 *                    (with -o multihost=on the MMP thread meanwhile rewrites
 *                    the last txg's uberblock with a rising MMP sequence and
 *                    fresh timestamps into the rings)
 *     -M MSEC        zfs_multihost_interval (default 1000): with a short
 *                    interval several MMP writes share one timestamp, so
 *                    only their sequence orders them
 *     -q             quiet
 *   Environment: ZFS_HOSTID=0x... sets the hostid written to the labels
 *   (hostname comes from uname(2)).
 */
#include <sys/zfs_context.h>
#include <sys/spa.h>
#include <sys/spa_impl.h>
#include <sys/vdev_impl.h>
#include <sys/dmu.h>
#include <sys/dmu_objset.h>
#include <sys/dmu_tx.h>
#include <sys/dsl_pool.h>
#include <sys/dsl_prop.h>
#include <sys/zap.h>
#include <sys/sa.h>
#include <sys/zfs_acl.h>
#include <sys/zfs_sa.h>
#include <sys/zfs_znode.h>
#include <sys/zfeature.h>
#include <sys/fs/zfs.h>
#include <zfeature_common.h>
#include <zfs_comutil.h>
#include <zfs_prop.h>
#include <libnvpair.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>

#define	MAXDEV 16
#define	MAXDS 32
#define	MAXF 64
#define	DIRENT_MAKE(type, obj) (((uint64_t)(type) << 60) | (obj))

static const char *progname = "zfs-mkpool";
static int quiet;

static void
die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	(void) fprintf(stderr, "%s: ", progname);
	(void) vfprintf(stderr, fmt, ap);
	(void) fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

typedef struct dev {
	const char *path, *phys, *devid;
	uint64_t whole;
} dev_t_;

typedef struct fileopt {
	char *ds;	/* "" = root dataset */
	char *path;	/* absolute path inside the file system */
	char *host;	/* host file with the content */
} fileopt_t;

typedef struct dsopt {
	char *name;
	nvlist_t *props;
} dsopt_t;

/* ---------------------------------------------------------------- ZPL */

static uint64_t
now_sec(void)
{
	const char *e = getenv("SOURCE_DATE_EPOCH");
	return (e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL));
}

/*
 * Create a directory or regular-file znode (SA bonus, ZPL version 5 layout
 * exactly as zfs_mknode() builds it on Linux/illumos: MODE SIZE GEN UID GID
 * PARENT FLAGS ATIME MTIME CTIME CRTIME LINKS DACL_COUNT DACL_ACES).
 */
static uint64_t
zpl_mknode(objset_t *os, sa_attr_type_t *sat, dmu_tx_t *tx, boolean_t isdir,
    uint64_t parent, uint64_t size, uint64_t links)
{
	int dnodesize = dmu_objset_dnodesize(os);
	if (dnodesize == 0)
		dnodesize = DNODE_MIN_SIZE;
	int bonuslen = DN_BONUS_SIZE(dnodesize);
	uint64_t obj;

	if (isdir)
		obj = zap_create_norm_dnsize(os, 0, DMU_OT_DIRECTORY_CONTENTS,
		    DMU_OT_SA, bonuslen, dnodesize, tx);
	else
		obj = dmu_object_alloc_dnsize(os, DMU_OT_PLAIN_FILE_CONTENTS,
		    0, DMU_OT_SA, bonuslen, dnodesize, tx);

	dmu_buf_t *db;
	sa_handle_t *hdl;
	VERIFY0(sa_buf_hold(os, obj, NULL, &db));
	VERIFY0(sa_handle_get_from_db(os, db, NULL, SA_HDL_PRIVATE, &hdl));

	uint64_t mode = isdir ? (S_IFDIR | 0755) : (S_IFREG | 0644);
	uint64_t gen = dmu_tx_get_txg(tx);
	uint64_t uid = 0, gid = 0;
	uint64_t pflags = ZFS_ARCHIVE | ZFS_AV_MODIFIED;
	uint64_t t[2] = { now_sec(), 0 };
	if (parent == 0)
		parent = obj;		/* root directory is its own parent */
	/* trivial ACL: owner@, group@, everyone@ allow entries */
	zfs_ace_hdr_t aces[3];
	uint32_t rx = ACE_READ_DATA | ACE_READ_ATTRIBUTES |
	    ACE_READ_NAMED_ATTRS | ACE_READ_ACL | ACE_SYNCHRONIZE |
	    (isdir ? ACE_EXECUTE : 0);
	aces[0].z_type = ACE_ACCESS_ALLOWED_ACE_TYPE; aces[0].z_flags = ACE_OWNER;
	aces[0].z_access_mask = rx | ACE_WRITE_DATA | ACE_APPEND_DATA |
	    ACE_WRITE_ATTRIBUTES | ACE_WRITE_NAMED_ATTRS | ACE_WRITE_ACL |
	    ACE_WRITE_OWNER | (isdir ? ACE_DELETE_CHILD : 0);
	aces[1].z_type = ACE_ACCESS_ALLOWED_ACE_TYPE;
	aces[1].z_flags = ACE_GROUP | ACE_IDENTIFIER_GROUP;
	aces[1].z_access_mask = rx;
	aces[2].z_type = ACE_ACCESS_ALLOWED_ACE_TYPE; aces[2].z_flags = ACE_EVERYONE;
	aces[2].z_access_mask = rx;
	uint64_t acecount = 3;

	sa_bulk_attr_t attrs[16];
	int cnt = 0;
	SA_ADD_BULK_ATTR(attrs, cnt, sat[ZPL_MODE], NULL, &mode, 8);
	SA_ADD_BULK_ATTR(attrs, cnt, sat[ZPL_SIZE], NULL, &size, 8);
	SA_ADD_BULK_ATTR(attrs, cnt, sat[ZPL_GEN], NULL, &gen, 8);
	SA_ADD_BULK_ATTR(attrs, cnt, sat[ZPL_UID], NULL, &uid, 8);
	SA_ADD_BULK_ATTR(attrs, cnt, sat[ZPL_GID], NULL, &gid, 8);
	SA_ADD_BULK_ATTR(attrs, cnt, sat[ZPL_PARENT], NULL, &parent, 8);
	SA_ADD_BULK_ATTR(attrs, cnt, sat[ZPL_FLAGS], NULL, &pflags, 8);
	SA_ADD_BULK_ATTR(attrs, cnt, sat[ZPL_ATIME], NULL, t, 16);
	SA_ADD_BULK_ATTR(attrs, cnt, sat[ZPL_MTIME], NULL, t, 16);
	SA_ADD_BULK_ATTR(attrs, cnt, sat[ZPL_CTIME], NULL, t, 16);
	SA_ADD_BULK_ATTR(attrs, cnt, sat[ZPL_CRTIME], NULL, t, 16);
	SA_ADD_BULK_ATTR(attrs, cnt, sat[ZPL_LINKS], NULL, &links, 8);
	SA_ADD_BULK_ATTR(attrs, cnt, sat[ZPL_DACL_COUNT], NULL, &acecount, 8);
	SA_ADD_BULK_ATTR(attrs, cnt, sat[ZPL_DACL_ACES], NULL, aces,
	    sizeof (aces));
	VERIFY0(sa_replace_all_by_template(hdl, attrs, cnt, tx));
	sa_handle_destroy(hdl);		/* also releases db */
	return (obj);
}

/* master node, SA registry, unlinked set (first half of zfs_create_fs) */
static uint64_t
zpl_create_master(objset_t *os, dmu_tx_t *tx)
{
	uint64_t version = zfs_zpl_version_map(spa_version(dmu_objset_spa(os)));
	uint64_t zero = 0, sa_obj = 0, obj;

	if (version < ZPL_VERSION_SA)
		die("pool version too old for a SA-based ZPL (need >= 26)");
	VERIFY0(zap_create_claim(os, MASTER_NODE_OBJ, DMU_OT_MASTER_NODE,
	    DMU_OT_NONE, 0, tx));
	VERIFY0(zap_update(os, MASTER_NODE_OBJ, "normalization", 8, 1, &zero,
	    tx));
	VERIFY0(zap_update(os, MASTER_NODE_OBJ, "utf8only", 8, 1, &zero, tx));
	VERIFY0(zap_update(os, MASTER_NODE_OBJ, "casesensitivity", 8, 1, &zero,
	    tx));
	VERIFY0(zap_update(os, MASTER_NODE_OBJ, ZPL_VERSION_STR, 8, 1,
	    &version, tx));
	sa_obj = zap_create(os, DMU_OT_SA_MASTER_NODE, DMU_OT_NONE, 0, tx);
	VERIFY0(zap_add(os, MASTER_NODE_OBJ, ZFS_SA_ATTRS, 8, 1, &sa_obj, tx));
	obj = zap_create(os, DMU_OT_UNLINKED_SET, DMU_OT_NONE, 0, tx);
	VERIFY0(zap_add(os, MASTER_NODE_OBJ, ZFS_UNLINKED_SET, 8, 1, &obj, tx));
	return (sa_obj);
}

/* root directory (second half of zfs_create_fs) */
static void
zpl_create_root(objset_t *os, uint64_t sa_obj, dmu_tx_t *tx)
{
	sa_attr_type_t *sat;
	VERIFY0(sa_setup(os, sa_obj, zfs_attr_table, ZPL_END, &sat));
	uint64_t obj = zpl_mknode(os, sat, tx, B_TRUE, 0, 2, 2);
	VERIFY0(zap_add(os, MASTER_NODE_OBJ, ZFS_ROOT_OBJ, 8, 1, &obj, tx));
}

static void
zpl_create_cb(objset_t *os, void *arg, cred_t *cr, dmu_tx_t *tx)
{
	(void) arg, (void) cr;
	/* syncing context, like the kernel's zfs_create_fs() */
	zpl_create_root(os, zpl_create_master(os, tx), tx);
}

static void
sa_bump(objset_t *os, sa_attr_type_t *sat, uint64_t obj, int dsize,
    int dlinks, dmu_tx_t *tx)
{
	dmu_buf_t *db;
	sa_handle_t *hdl;
	uint64_t size, links;
	VERIFY0(sa_buf_hold(os, obj, NULL, &db));
	VERIFY0(sa_handle_get_from_db(os, db, NULL, SA_HDL_PRIVATE, &hdl));
	VERIFY0(sa_lookup(hdl, sat[ZPL_SIZE], &size, 8));
	VERIFY0(sa_lookup(hdl, sat[ZPL_LINKS], &links, 8));
	size += dsize;
	links += dlinks;
	VERIFY0(sa_update(hdl, sat[ZPL_SIZE], &size, 8, tx));
	VERIFY0(sa_update(hdl, sat[ZPL_LINKS], &links, 8, tx));
	sa_handle_destroy(hdl);
}

/* create (or find) directory NAME in DIR; open context */
static uint64_t
zpl_mkdir(objset_t *os, sa_attr_type_t *sat, uint64_t dir, const char *name)
{
	uint64_t ent;
	if (zap_lookup(os, dir, name, 8, 1, &ent) == 0)
		return (ZFS_DIRENT_OBJ(ent));
	dmu_tx_t *tx = dmu_tx_create(os);
	dmu_tx_hold_zap(tx, dir, B_TRUE, name);
	dmu_tx_hold_zap(tx, DMU_NEW_OBJECT, B_FALSE, NULL);
	dmu_tx_hold_sa_create(tx, 256);
	dmu_tx_hold_bonus(tx, dir);
	VERIFY0(dmu_tx_assign(tx, TXG_WAIT));
	uint64_t obj = zpl_mknode(os, sat, tx, B_TRUE, dir, 2, 2);
	ent = DIRENT_MAKE(IFTODT(S_IFDIR), obj);
	VERIFY0(zap_add(os, dir, name, 8, 1, &ent, tx));
	sa_bump(os, sat, dir, 1, 1, tx);
	dmu_tx_commit(tx);
	return (obj);
}

static void
zpl_write_file(objset_t *os, sa_attr_type_t *sat, uint64_t dir,
    const char *name, const char *hostfile)
{
	int fd = open(hostfile, O_RDONLY);
	if (fd < 0)
		die("cannot open %s: %s", hostfile, strerror(errno));
	struct stat st;
	VERIFY0(fstat(fd, &st));
	uint64_t len = st.st_size;
	char *buf = malloc(len ? len : 1);
	if (len && read(fd, buf, len) != (ssize_t)len)
		die("short read on %s", hostfile);
	(void) close(fd);

	uint64_t ent;
	if (zap_lookup(os, dir, name, 8, 1, &ent) == 0)
		die("file %s exists already", name);
	dmu_tx_t *tx = dmu_tx_create(os);
	dmu_tx_hold_zap(tx, dir, B_TRUE, name);
	dmu_tx_hold_sa_create(tx, 256);
	dmu_tx_hold_bonus(tx, dir);
	dmu_tx_hold_write(tx, DMU_NEW_OBJECT, 0, len ? len : 1);
	VERIFY0(dmu_tx_assign(tx, TXG_WAIT));
	uint64_t obj = zpl_mknode(os, sat, tx, B_FALSE, dir, len, 1);
	if (len)
		dmu_write(os, obj, 0, len, buf, tx);
	ent = DIRENT_MAKE(IFTODT(S_IFREG), obj);
	VERIFY0(zap_add(os, dir, name, 8, 1, &ent, tx));
	sa_bump(os, sat, dir, 1, 0, tx);
	dmu_tx_commit(tx);
	free(buf);
}

static void
zpl_put(const char *pool, const fileopt_t *f)
{
	char dsname[ZFS_MAX_DATASET_NAME_LEN];
	objset_t *os;
	uint64_t sa_obj = 0, root;
	sa_attr_type_t *sat;

	if (f->ds[0] == '\0')
		(void) snprintf(dsname, sizeof (dsname), "%s", pool);
	else
		(void) snprintf(dsname, sizeof (dsname), "%s/%s", pool, f->ds);
	int err = dmu_objset_own(dsname, DMU_OST_ZFS, B_FALSE, B_TRUE, FTAG,
	    &os);
	if (err)
		die("cannot own dataset %s: %s", dsname, strerror(err));

	if (zap_lookup(os, MASTER_NODE_OBJ, ZFS_ROOT_OBJ, 8, 1, &root) != 0) {
		/*
		 * The pool's root dataset: userland spa_create() makes no ZPL
		 * (dsl_pool_create calls zfs_create_fs only in the kernel).
		 * Open context, two transactions: the SA master must exist
		 * before sa_setup() and dmu_tx_hold_sa_create().
		 */
		dmu_tx_t *tx = dmu_tx_create(os);
		dmu_tx_hold_zap(tx, DMU_NEW_OBJECT, B_TRUE, NULL);
		dmu_tx_hold_zap(tx, DMU_NEW_OBJECT, B_TRUE, NULL);
		dmu_tx_hold_zap(tx, DMU_NEW_OBJECT, B_TRUE, NULL);
		VERIFY0(dmu_tx_assign(tx, TXG_WAIT));
		sa_obj = zpl_create_master(os, tx);
		dmu_tx_commit(tx);
		VERIFY0(sa_setup(os, sa_obj, zfs_attr_table, ZPL_END, &sat));
		tx = dmu_tx_create(os);
		dmu_tx_hold_zap(tx, MASTER_NODE_OBJ, B_TRUE, ZFS_ROOT_OBJ);
		dmu_tx_hold_zap(tx, DMU_NEW_OBJECT, B_TRUE, NULL);
		dmu_tx_hold_sa_create(tx, 256);
		VERIFY0(dmu_tx_assign(tx, TXG_WAIT));
		zpl_create_root(os, sa_obj, tx);
		dmu_tx_commit(tx);
		VERIFY0(zap_lookup(os, MASTER_NODE_OBJ, ZFS_ROOT_OBJ, 8, 1,
		    &root));
	}
	VERIFY0(zap_lookup(os, MASTER_NODE_OBJ, ZFS_SA_ATTRS, 8, 1, &sa_obj));
	VERIFY0(sa_setup(os, sa_obj, zfs_attr_table, ZPL_END, &sat));

	char *p = strdup(f->path), *save = NULL, *tok, *next;
	uint64_t dir = root;
	tok = strtok_r(p, "/", &save);
	while (tok != NULL) {
		next = strtok_r(NULL, "/", &save);
		if (next == NULL)
			zpl_write_file(os, sat, dir, tok, f->host);
		else
			dir = zpl_mkdir(os, sat, dir, tok);
		tok = next;
	}
	free(p);
	dmu_objset_disown(os, B_TRUE, FTAG);
	txg_wait_synced(spa_get_dsl(dmu_objset_spa(os)), 0);
}

/* ------------------------------------------------------------ props */

static void
add_pool_prop(nvlist_t *props, const char *pv)
{
	char *s = strdup(pv), *eq = strchr(s, '=');
	if (eq == NULL)
		die("bad -o %s", pv);
	*eq++ = '\0';
	if (zpool_prop_feature(s)) {
		spa_feature_t fid;
		if (zfeature_lookup_name(strchr(s, '@') + 1, &fid) != 0)
			die("unknown feature %s", s);
		fnvlist_add_uint64(props, s, 0);
	} else {
		zpool_prop_t prop = zpool_name_to_prop(s);
		if (prop == ZPOOL_PROP_INVAL)
			die("unknown pool property %s", s);
		uint64_t idx;
		switch (zpool_prop_get_type(prop)) {
		case PROP_TYPE_STRING:
			fnvlist_add_string(props, s, eq);
			break;
		case PROP_TYPE_INDEX:
			if (zpool_prop_string_to_index(prop, eq, &idx) != 0)
				die("bad value for %s", s);
			fnvlist_add_uint64(props, s, idx);
			break;
		default:
			fnvlist_add_uint64(props, s, strtoull(eq, NULL, 0));
		}
	}
	free(s);
}

static void
add_ds_prop(nvlist_t *props, const char *pv)
{
	char *s = strdup(pv), *eq = strchr(s, '=');
	if (eq == NULL)
		die("bad -O %s", pv);
	*eq++ = '\0';
	zfs_prop_t prop = zfs_name_to_prop(s);
	uint64_t idx;
	if (prop == ZPROP_INVAL) {
		if (strchr(s, ':') == NULL)
			die("unknown dataset property %s", s);
		fnvlist_add_string(props, s, eq);	/* user property */
	} else switch (zfs_prop_get_type(prop)) {
	case PROP_TYPE_STRING:
		fnvlist_add_string(props, s, eq);
		break;
	case PROP_TYPE_INDEX:
		if (zfs_prop_string_to_index(prop, eq, &idx) != 0)
			die("bad value for %s", s);
		fnvlist_add_uint64(props, s, idx);
		break;
	default:
		fnvlist_add_uint64(props, s, strtoull(eq, NULL, 0));
	}
	free(s);
}

/* ------------------------------------------------------------- main */

int
main(int argc, char **argv)
{
	dev_t_ devs[MAXDEV];
	dsopt_t dss[MAXDS];
	fileopt_t files[MAXF];
	int ndev = 0, nds = 0, nf = 0, mirror = 0, noexport = 0, c, err;
	unsigned long long idle = 0;
	uint64_t nparity = 0;
	uint64_t ashift = 9;
	char *bootfs = NULL;
	nvlist_t *props = fnvlist_alloc();
	nvlist_t *rootprops = fnvlist_alloc();
	boolean_t has_version = B_FALSE, has_feature = B_FALSE;

	/* never touch /etc/zfs/zpool.cache */
	spa_config_path = (char *)"/nonexistent/zfs-mkpool/zpool.cache";
	/* first: it also registers the property tables used by -o/-O */
	kernel_init(SPA_MODE_READ | SPA_MODE_WRITE);

	while ((c = getopt(argc, argv, "d:P:I:w:mz:a:o:c:O:f:b:nqS:M:")) != -1) {
		switch (c) {
		case 'd':
			if (ndev == MAXDEV)
				die("too many devices");
			devs[ndev].path = optarg;
			devs[ndev].phys = devs[ndev].devid = NULL;
			devs[ndev].whole = 0;
			ndev++;
			break;
		case 'P': case 'I': case 'w':
			if (ndev == 0)
				die("-%c must follow -d", c);
			if (c == 'P')
				devs[ndev - 1].phys = optarg;
			else if (c == 'I')
				devs[ndev - 1].devid = optarg;
			else
				devs[ndev - 1].whole = strtoull(optarg, NULL, 0);
			break;
		case 'm': mirror = 1; break;
		case 'z':
			nparity = strtoull(optarg, NULL, 0);
			if (nparity < 1 || nparity > 3)
				die("-z wants a parity of 1, 2 or 3");
			break;
		case 'a': ashift = strtoull(optarg, NULL, 0); break;
		case 'o':
			add_pool_prop(props, optarg);
			if (strncmp(optarg, "version=", 8) == 0)
				has_version = B_TRUE;
			if (strncmp(optarg, "feature@", 8) == 0)
				has_feature = B_TRUE;
			break;
		case 'c':
			if (nds == MAXDS)
				die("too many datasets");
			dss[nds].name = optarg;
			dss[nds].props = fnvlist_alloc();
			nds++;
			break;
		case 'O':
			add_ds_prop(nds ? dss[nds - 1].props : rootprops, optarg);
			break;
		case 'f': {
			if (nf == MAXF)
				die("too many files");
			char *s = strdup(optarg);
			char *colon = strchr(s, ':'), *eq = strchr(s, '=');
			if (!colon || !eq || eq < colon || colon[1] != '/')
				die("-f wants DS:/PATH=HOSTFILE, got %s", optarg);
			*colon = '\0'; *eq = '\0';
			files[nf].ds = s;
			files[nf].path = colon + 1;
			files[nf].host = eq + 1;
			nf++;
			break;
		}
		case 'b': bootfs = optarg; break;
		case 'n': noexport = 1; break;
		case 'S': idle = strtoull(optarg, NULL, 0); break;
		case 'M':
			zfs_multihost_interval = strtoull(optarg, NULL, 0);
			break;
		case 'q': quiet = 1; break;
		default:
			die("bad option (see the comment at the top of the source)");
		}
	}
	if (optind != argc - 1 || ndev == 0)
		die("usage: zfs-mkpool -d PATH [-P PHYS] [-I DEVID] ... POOL");
	const char *pool = argv[optind];
	if (mirror && nparity)
		die("-m and -z exclude each other");
	if (nparity && (uint64_t)ndev < nparity + 1)
		die("raidz%llu needs at least %llu devices",
		    (u_longlong_t)nparity, (u_longlong_t)nparity + 1);

	/* like 'zpool create': enable every feature unless told otherwise */
	if (!has_version && !has_feature) {
		for (int i = 0; i < SPA_FEATURES; i++) {
			char buf[128];
			(void) snprintf(buf, sizeof (buf), "feature@%s",
			    spa_feature_table[i].fi_uname);
			fnvlist_add_uint64(props, buf, 0);
		}
	}
	fnvlist_add_string(props, zpool_prop_to_name(ZPOOL_PROP_CACHEFILE),
	    "none");

	/* ---- build nvroot */
	nvlist_t **leaves = calloc(ndev, sizeof (nvlist_t *));
	for (int i = 0; i < ndev; i++) {
		nvlist_t *nv = fnvlist_alloc();
		fnvlist_add_string(nv, ZPOOL_CONFIG_TYPE, VDEV_TYPE_DISK);
		fnvlist_add_string(nv, ZPOOL_CONFIG_PATH, devs[i].path);
		if (devs[i].devid)
			fnvlist_add_string(nv, ZPOOL_CONFIG_DEVID, devs[i].devid);
		if (devs[i].phys)
			fnvlist_add_string(nv, ZPOOL_CONFIG_PHYS_PATH,
			    devs[i].phys);
		fnvlist_add_uint64(nv, ZPOOL_CONFIG_WHOLE_DISK, devs[i].whole);
		fnvlist_add_uint64(nv, ZPOOL_CONFIG_IS_LOG, 0);
		if (!mirror && !nparity)
			fnvlist_add_uint64(nv, ZPOOL_CONFIG_ASHIFT, ashift);
		leaves[i] = nv;
	}
	nvlist_t *nvroot = fnvlist_alloc();
	fnvlist_add_string(nvroot, ZPOOL_CONFIG_TYPE, VDEV_TYPE_ROOT);
	if (mirror || nparity) {
		nvlist_t *m = fnvlist_alloc();
		fnvlist_add_string(m, ZPOOL_CONFIG_TYPE,
		    nparity ? VDEV_TYPE_RAIDZ : VDEV_TYPE_MIRROR);
		if (nparity)
			fnvlist_add_uint64(m, ZPOOL_CONFIG_NPARITY, nparity);
		fnvlist_add_uint64(m, ZPOOL_CONFIG_ASHIFT, ashift);
		fnvlist_add_uint64(m, ZPOOL_CONFIG_IS_LOG, 0);
		fnvlist_add_nvlist_array(m, ZPOOL_CONFIG_CHILDREN,
		    (nvlist_t **)leaves, ndev);
		fnvlist_add_nvlist_array(nvroot, ZPOOL_CONFIG_CHILDREN,
		    (nvlist_t **)&m, 1);
	} else {
		fnvlist_add_nvlist_array(nvroot, ZPOOL_CONFIG_CHILDREN,
		    (nvlist_t **)leaves, ndev);
	}

	err = spa_create(pool, nvroot, props, NULL, NULL);
	if (err)
		die("spa_create(%s) failed: %s (%d)", pool, strerror(err), err);

	if (!nvlist_empty(rootprops) &&
	    (err = dsl_props_set(pool, ZPROP_SRC_LOCAL, rootprops)) != 0)
		die("setting properties on %s: %s", pool, strerror(err));

	for (int i = 0; i < nds; i++) {
		char name[ZFS_MAX_DATASET_NAME_LEN];
		(void) snprintf(name, sizeof (name), "%s/%s", pool, dss[i].name);
		err = dmu_objset_create(name, DMU_OST_ZFS, 0, NULL,
		    zpl_create_cb, NULL);
		if (err)
			die("creating dataset %s: %s", name, strerror(err));
		if (!nvlist_empty(dss[i].props) && (err = dsl_props_set(name,
		    ZPROP_SRC_LOCAL, dss[i].props)) != 0)
			die("setting properties on %s: %s", name, strerror(err));
	}
	for (int i = 0; i < nf; i++)
		zpl_put(pool, &files[i]);

	if (bootfs) {
		spa_t *spa;
		char name[ZFS_MAX_DATASET_NAME_LEN];
		(void) snprintf(name, sizeof (name), "%s/%s", pool, bootfs);
		nvlist_t *bp = fnvlist_alloc();
		fnvlist_add_string(bp, zpool_prop_to_name(ZPOOL_PROP_BOOTFS),
		    name);
		VERIFY0(spa_open(pool, &spa, FTAG));
		if ((err = spa_prop_set(spa, bp)) != 0)
			die("setting bootfs=%s: %s", name, strerror(err));
		spa_close(spa, FTAG);
		fnvlist_free(bp);
	}

	{
		spa_t *spa;
		VERIFY0(spa_open(pool, &spa, FTAG));
		txg_wait_synced(spa_get_dsl(spa), 0);
		if (!quiet)
			(void) printf("created pool '%s' guid %llu version %llu "
			    "txg %llu\n", pool,
			    (u_longlong_t)spa_guid(spa),
			    (u_longlong_t)spa_version(spa),
			    (u_longlong_t)spa_last_synced_txg(spa));
		spa_close(spa, FTAG);
	}
	if (idle > 0)
		(void) sleep(idle);

	if (!noexport) {
		err = spa_export(pool, NULL, B_FALSE, B_FALSE);
		if (err)
			die("spa_export(%s): %s", pool, strerror(err));
		if (!quiet)
			(void) printf("exported pool '%s'\n", pool);
	}
	kernel_fini();
	return (0);
}
