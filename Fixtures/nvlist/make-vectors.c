/*
 * make-vectors: pack nvlists with the system libnvpair (the reference encoder) and write the XDR bytes, so
 * the Swift codec can be checked against them byte for byte. The values are mirrored by hand in
 * Tests/NVListTests/LibnvpairVectorTests.swift (run from Fixtures/nvlist); change both together.
 *
 *   cc -I/usr/include/libzfs -I/usr/include/libspl -o make-vectors make-vectors.c -lnvpair
 *   ./make-vectors OUTDIR
 */
#include <libnvpair.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
write_packed(const char *dir, const char *name, nvlist_t *nvl)
{
	char *buf = NULL;
	size_t len = 0;
	char path[4096];
	if (nvlist_pack(nvl, &buf, &len, NV_ENCODE_XDR, 0) != 0) {
		fprintf(stderr, "pack %s failed\n", name);
		exit(1);
	}
	snprintf(path, sizeof (path), "%s/%s.xdr", dir, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	free(buf);
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : ".";
	nvlist_t *all, *inner, *a0, *a1;

	/* every scalar type, once */
	nvlist_alloc(&all, NV_UNIQUE_NAME, 0);
	nvlist_add_boolean(all, "flag");
	nvlist_add_boolean_value(all, "yes", B_TRUE);
	nvlist_add_boolean_value(all, "no", B_FALSE);
	nvlist_add_byte(all, "byte", 0xab);
	nvlist_add_int8(all, "int8", -5);
	nvlist_add_uint8(all, "uint8", 250);
	nvlist_add_int16(all, "int16", -1234);
	nvlist_add_uint16(all, "uint16", 65000);
	nvlist_add_int32(all, "int32", -100000);
	nvlist_add_uint32(all, "uint32", 4000000000u);
	nvlist_add_int64(all, "int64", -5000000000LL);
	nvlist_add_uint64(all, "uint64", 18446744073709551615ULL);
	nvlist_add_hrtime(all, "hrtime", 1234567890123LL);
	nvlist_add_double(all, "double", 3.25);
	nvlist_add_string(all, "string", "/dev/dsk/c1t0d0s0");
	nvlist_add_string(all, "empty", "");

	/* every array type */
	uchar_t bytes[5] = { 1, 2, 3, 0xfe, 0xff };
	int8_t i8[3] = { -1, 0, 127 };
	uint8_t u8[3] = { 0, 128, 255 };
	int16_t i16[2] = { -32768, 32767 };
	uint16_t u16[2] = { 0, 65535 };
	int32_t i32[3] = { -1, 0, 2147483647 };
	uint32_t u32[2] = { 1, 4294967295u };
	int64_t i64[2] = { -9223372036854775807LL - 1, 42 };
	uint64_t u64[3] = { 0, 1, 18446744073709551615ULL };
	boolean_t bools[3] = { B_TRUE, B_FALSE, B_TRUE };
	const char *strs[3] = { "a", "", "three" };
	nvlist_add_byte_array(all, "byte_array", bytes, 5);
	nvlist_add_int8_array(all, "int8_array", i8, 3);
	nvlist_add_uint8_array(all, "uint8_array", u8, 3);
	nvlist_add_int16_array(all, "int16_array", i16, 2);
	nvlist_add_uint16_array(all, "uint16_array", u16, 2);
	nvlist_add_int32_array(all, "int32_array", i32, 3);
	nvlist_add_uint32_array(all, "uint32_array", u32, 2);
	nvlist_add_int64_array(all, "int64_array", i64, 2);
	nvlist_add_uint64_array(all, "uint64_array", u64, 3);
	nvlist_add_boolean_array(all, "boolean_array", bools, 3);
	nvlist_add_string_array(all, "string_array", (char **)strs, 3);

	/* nesting */
	nvlist_alloc(&inner, NV_UNIQUE_NAME, 0);
	nvlist_add_string(inner, "type", "disk");
	nvlist_add_uint64(inner, "guid", 0x1234567890abcdefULL);
	nvlist_add_nvlist(all, "nested", inner);
	nvlist_alloc(&a0, NV_UNIQUE_NAME, 0);
	nvlist_add_uint64(a0, "id", 0);
	nvlist_alloc(&a1, NV_UNIQUE_NAME, 0);
	nvlist_add_uint64(a1, "id", 1);
	nvlist_add_nvlist(a1, "inner", inner);
	nvlist_t *arr[2] = { a0, a1 };
	nvlist_add_nvlist_array(all, "nvlist_array", arr, 2);
	write_packed(dir, "all-types", all);

	/* empty arrays: libnvpair's encode_size quirk */
	nvlist_t *empty;
	nvlist_alloc(&empty, NV_UNIQUE_NAME, 0);
	nvlist_add_uint64_array(empty, "u64", NULL, 0);
	nvlist_add_string_array(empty, "strs", NULL, 0);
	nvlist_add_nvlist_array(empty, "lists", NULL, 0);
	nvlist_add_byte_array(empty, "bytes", NULL, 0);
	nvlist_add_uint64(empty, "after", 7);
	write_packed(dir, "empty-arrays", empty);

	/* an empty array inside nested lists: every enclosing encode_size counts it */
	nvlist_t *ne_inner, *ne_outer;
	nvlist_alloc(&ne_inner, NV_UNIQUE_NAME, 0);
	nvlist_add_uint64_array(ne_inner, "none", NULL, 0);
	nvlist_add_uint64(ne_inner, "x", 1);
	nvlist_alloc(&ne_outer, NV_UNIQUE_NAME, 0);
	nvlist_t *ne_arr[2] = { ne_inner, ne_inner };
	nvlist_add_nvlist_array(ne_outer, "outer", ne_arr, 2);
	nvlist_add_string(ne_outer, "y", "z");
	write_packed(dir, "nested-empty", ne_outer);

	/* flags: none, and unique name+type */
	nvlist_t *noflag, *typeflag;
	nvlist_alloc(&noflag, 0, 0);
	nvlist_add_uint64(noflag, "dup", 1);
	nvlist_add_uint64(noflag, "dup", 2);
	write_packed(dir, "no-unique-flag", noflag);
	nvlist_alloc(&typeflag, NV_UNIQUE_NAME_TYPE, 0);
	nvlist_add_uint64(typeflag, "x", 1);
	nvlist_add_string(typeflag, "x", "one");
	write_packed(dir, "unique-name-type", typeflag);

	/*
	 * strings are bytes: libnvpair packs any bytes but NUL, UTF-8 or not (a Latin-1 hostname, a lone
	 * continuation byte, a truncated sequence, an overlong encoding), and two UTF-8 spellings of one
	 * character stay two different strings
	 */
	nvlist_t *bytestr, *bs_inner;
	nvlist_alloc(&bytestr, NV_UNIQUE_NAME, 0);
	nvlist_add_string(bytestr, "hostname", "omni\xf6s");
	nvlist_add_string(bytestr, "comment", "\x80 lone, \xe2\x82 cut, \xc0\xaf overlong, \\x41 literal");
	nvlist_add_string(bytestr, "precomposed", "caf\xc3\xa9");
	nvlist_add_string(bytestr, "decomposed", "cafe\xcc\x81");
	const char *bstrs[4] = { "ok", "\xff\xfe", "", "ende\xe9" };
	nvlist_add_string_array(bytestr, "strings", (char **)bstrs, 4);
	nvlist_alloc(&bs_inner, NV_UNIQUE_NAME, 0);
	nvlist_add_string(bs_inner, "path", "/dev/dsk/c1t0d0s0-\xe9t\xe9");
	nvlist_add_nvlist(bytestr, "vdev_tree", bs_inner);
	write_packed(dir, "non-utf8-strings", bytestr);

	/* an empty list */
	nvlist_t *none;
	nvlist_alloc(&none, NV_UNIQUE_NAME, 0);
	write_packed(dir, "empty-list", none);
	return (0);
}
